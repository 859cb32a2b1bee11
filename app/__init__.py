"""The TAda Lab Gradio app: :mod:`app.service` (models, runs, explanations), :mod:`app.ui` (Blocks layout).

``app.py`` at the repository root only wires them together; ``python -m tada predict`` uses the same
service (:mod:`app.cli_predict`).
"""
