"""Model architectures; importing this package registers every one of them.

One file per architecture family (timm style).  Each file registers its builders with
``@register_model``, its released checkpoints with ``register_pretrained`` and an architecture
inferrer with ``register_arch_inferrer``.
"""

# Registration order matters: the architectures before the zoos that register weights for them.
# isort: off
from tada.models import ila  # noqa: F401
from tada.models import tada2d, tadaconvnextv2, tadaformer  # noqa: F401,E402
from tada.models import tadaconv_zoo  # noqa: F401,E402  (after the architectures it registers)
from tada.models import frame2d, motion_zoo  # noqa: F401,E402  (bundled offline models)
# isort: on
