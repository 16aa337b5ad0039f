"""ECLO model package (pure ML: no database, no web; imports nothing of hab outside ``models``).

metadata (the metadata Struct, the version number type, the training fingerprint), features (the one
encoder of model inputs: schema, errors, one row, batches), artifact (text model + JSON metadata, SHA-256
verified), interpret (bands, percentiles), loaded (serving), holder (the hot-swapped served model), train
and legacy (the one-off v1.2.5 pickle import). Import from the submodules; nothing is re-exported here.
"""
