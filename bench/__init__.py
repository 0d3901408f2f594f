"""The benchmark behind `make bench`: its data builder (`bench.data`), its HTTP load (`bench.http`),
the in-process figures and the run that gathers them (`bench.runner`), and `manage.py bench`.

Not a clinical app: no module of `kaemdr`, `pathways`, `screening`, `sessions` or `integration`
imports it, production does not install it, and the image does not ship it. It is installed as a
Django app (for its management command) only by `kaemdr.settings.bench`, which `make bench` uses.
"""
