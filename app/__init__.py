"""The TAda Lab Gradio app, one job per module.

:mod:`app.catalogue` (the model picker's entries), :mod:`app.runtime` (device, precision, accelerator
functions), :mod:`app.service` (loading and caching models, predictions, explanations),
:mod:`app.errors` (what the user reads when something fails), :mod:`app.jobs` (stoppable work with
progress), :mod:`app.present` (results -> Markdown, gallery items, figures), :mod:`app.handlers`
(the functions behind the events), :mod:`app.ui` (the Blocks layout and its wiring),
:mod:`app.hosting` (adding models from the page, browser previews).

``app.py`` at the repository root only wires them together; ``python -m tada predict`` uses the same
service (:mod:`app.cli_predict`).
"""
