"""Registries: the client side (resolve, fetch, push, auth) and berth's own registry server (server/)."""
