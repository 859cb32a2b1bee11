"""Model architectures; importing this package registers every one of them.

One file per architecture (timm style).  Each file declares its variants in a ``default_cfgs`` dict
beside its builders, registers the builders with ``@register_model`` (which registers those
variants too) and an architecture inferrer with ``register_arch_inferrer`` (for ``convert``).
"""

# isort: off
from tada.models import ila, tada2d, tadaconvnextv2, tadaformer  # noqa: F401  (released architectures)
from tada.models import frame2d, motion_zoo  # noqa: F401  (bundled offline models)
# isort: on
