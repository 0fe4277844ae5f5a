"""One controller per kind (modelpackagegroup, modelpackage, model): pure reconcile logic,
wired to kopf in wiring.py."""
