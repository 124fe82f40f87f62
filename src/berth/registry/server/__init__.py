"""berth's own registry server: the OCI distribution spec v1.1 (Docker Registry HTTP API v2).

``storage`` keeps content-addressed blobs and per-repository metadata on disk, ``app`` answers HTTP,
``auth`` checks htpasswd credentials, ``page`` renders the HTML index, ``gc`` sweeps unreferenced blobs
and ``main`` parses flags. Imports only berth.types, berth.util, berth.errors, aiohttp and bcrypt.
"""
