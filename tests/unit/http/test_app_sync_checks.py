"""The app remembers whether each hook and view is a coroutine function (App.ensure_sync)."""

from __future__ import annotations

import pytest

from scim_bridge.app import App


class _Unhashable:
    __hash__ = None  # type: ignore[assignment]

    def __call__(self) -> str:
        return "called"


def test_a_sync_function_is_returned_as_is_and_asked_about_once(monkeypatch):
    app = App(__name__)
    asked = []
    original = App.__mro__[1].ensure_sync

    def counting(self, func):
        asked.append(func)
        return original(self, func)

    monkeypatch.setattr(App.__mro__[1], "ensure_sync", counting)

    def view() -> str:
        return "ok"

    assert app.ensure_sync(view) is view
    assert app.ensure_sync(view) is view
    assert asked == [view]


def test_an_async_function_is_still_wrapped_once(monkeypatch):
    app = App(__name__)
    wrapped_for = []

    def fake_async_to_sync(func):
        wrapped_for.append(func)
        return lambda: "ran"

    monkeypatch.setattr(app, "async_to_sync", fake_async_to_sync)

    async def view() -> str:
        return "ok"

    wrapped = app.ensure_sync(view)
    assert wrapped is not view and wrapped() == "ran"
    assert app.ensure_sync(view) is wrapped
    assert wrapped_for == [view]


def test_an_async_function_without_asgiref_fails_as_flask_does(monkeypatch):
    app = App(__name__)

    async def view() -> str:
        return "ok"

    def no_asgiref(func):
        raise RuntimeError("Install Flask with the 'async' extra in order to use async views.")

    monkeypatch.setattr(app, "async_to_sync", no_asgiref)
    with pytest.raises(RuntimeError):
        app.ensure_sync(view)


def test_unhashable_callables_pass_through_unremembered():
    app = App(__name__)
    func = _Unhashable()
    assert app.ensure_sync(func) is func
    assert app._sync == {}


def test_the_memory_is_bounded():
    app = App(__name__)
    funcs = [(lambda i=i: i) for i in range(App._SYNC_CHECKS_KEPT + 5)]
    for func in funcs:
        assert app.ensure_sync(func) is func
    assert len(app._sync) <= App._SYNC_CHECKS_KEPT


def test_every_request_still_runs_its_hooks(scim):
    # The request log's hooks ran: the answer carries a request id.
    response = scim.get("/ServiceProviderConfig")
    assert response.status_code == 200
    assert response.headers["X-Request-ID"]
