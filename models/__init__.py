"""ECLO model package (pure ML: no database, no web).

features (the one encoder of model inputs), artifact (text model + JSON metadata, SHA-256 verified),
loaded (serving), interpret (bands, percentiles), train and legacy (the one-off v1.2.5 pickle import).
"""
