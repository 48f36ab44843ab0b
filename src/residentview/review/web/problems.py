"""What the review page answers a request it cannot carry out: a message for the person, and the
HTTP status it goes with. Part of residentview's one error hierarchy."""

from __future__ import annotations

from residentview.errors import ResidentViewError


class PageProblem(ResidentViewError):
    """A request the page cannot carry out (400): a bad or missing value."""

    status = 400

    def __init__(self, message: str, reload: bool = False):
        super().__init__(message)
        self.reload = reload  # the page must be reloaded to go on (a run replaced the folder)


class NotFound(PageProblem):
    """An unknown resident, record or queue pair (404)."""

    status = 404


class Conflict(PageProblem):
    """The store or the run changed since the page showed what the request is about (409)."""

    status = 409
