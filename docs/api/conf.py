"""Sphinx configuration of the API reference (built by .ci/run with warnings as errors:
``sphinx-build -W -b html docs/api docs/api/_build``)."""

project = "proml-sim"
extensions = ["sphinx.ext.autodoc", "sphinx.ext.napoleon"]
autodoc_member_order = "bysource"
autodoc_typehints = "none"  # signatures stay readable; types are in the source
autodoc_default_options = {"members": True, "undoc-members": False, "show-inheritance": True}
nitpicky = False
html_theme = "alabaster"
exclude_patterns = ["_build"]
suppress_warnings = ["ref.python"]  # same names exported from several modules
