"""Berth's one error taxonomy.

Each class maps to one HTTP status (see ``api/middleware.py``). Constructors
produce Docker's exact message texts, because clients match on them.
"""
from __future__ import annotations


class BerthError(Exception):
    """Base of every error berth reports to a client."""

    status = 500

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class NotFound(BerthError):
    status = 404

    @classmethod
    def image(cls, name: str) -> "NotFound":
        return cls(f"No such image: {name}")

    @classmethod
    def container(cls, name: str) -> "NotFound":
        return cls(f"No such container: {name}")

    @classmethod
    def exec_instance(cls, name: str) -> "NotFound":
        return cls(f"No such exec instance: {name}")


class Conflict(BerthError):
    status = 409

    @classmethod
    def container_name(cls, name: str, owner: str) -> "Conflict":
        return cls(
            f'Conflict. The container name "/{name}" is already in use by container "{owner}". '
            "You have to remove (or rename) that container to be able to reuse that name."
        )


class InvalidArgument(BerthError):
    status = 400


class NotModified(BerthError):
    status = 304


class NotImplementedYet(BerthError):
    status = 501


class Unavailable(BerthError):
    status = 503


class Unauthorized(BerthError):
    status = 401


class Forbidden(BerthError):
    status = 403


class SystemError_(BerthError):
    """A failure of the host or runtime (runc refused, a mount failed)."""

    status = 500
