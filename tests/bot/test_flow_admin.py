"""Editing flows and the branch/ATM directory: checks that name the step or the line, all
or nothing, a save over someone else's save refused, history, switching off, roles."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from okno.bot.places import distance_km
from tests.bot.test_flows import FLOWS, PLACES
from tests.builders import bearer, staff_token


def _post(client: TestClient, path: str, body: str, token: str, kind: str) -> Any:
    return client.post(path, content=body.encode(), headers={**bearer(token), "Content-Type": kind})


def _flow(**steps: Any) -> dict[str, Any]:
    return {"title": "Тест", "questions": ["тестовый вопрос"], "start": "a", "steps": steps}


def test_bad_flows_are_refused_with_the_step_named_and_nothing_stored(client: TestClient) -> None:
    root = staff_token(client, "root")
    cases = {
        "goes to 'nowhere', which is not a step": {"a": {"text": "x", "next": "nowhere"}},
        "steps a → b → a loop without waiting": {
            "a": {"text": "x", "next": "b"},
            "b": {"text": "y", "next": "a"},
        },
        "two options have the same label": {
            "a": {
                "kind": "choice",
                "text": "?",
                "options": [{"label": "Да", "next": "a"}, {"label": "да", "next": "a"}],
            }
        },
        "kind must be one of": {"a": {"kind": "teleport", "text": "x"}},
        "limit must be a whole number from 1 to 5": {
            "a": {"kind": "location", "text": "где вы?", "limit": 50}
        },
        "label longer than 40": {
            "a": {"kind": "choice", "text": "?", "options": [{"label": "д" * 41, "next": "a"}]}
        },
    }
    for problem, steps in cases.items():
        response = client.put(
            "/api/v1/bot/flows/t", json={"flow": _flow(**steps)}, headers=bearer(root)
        )
        assert response.status_code == 400 and problem in response.json()["detail"], (
            problem,
            response.text,
        )
    # in an import, one bad flow stops the whole file
    mixed = (
        FLOWS
        + "  - id: broken\n    title: x\n    questions: [y]\n    steps: {a: {next: b, text: z}}\n"
    )
    response = _post(client, "/api/v1/bot/flows/import", mixed, root, "application/yaml")
    assert response.status_code == 400
    assert response.json()["fields"]["errors"] == [
        {"position": 4, "id": "broken", "problem": "step 'a': goes to 'b', which is not a step"}
    ]
    assert client.get("/api/v1/bot/flows", headers=bearer(root)).json()["flows"] == []
    garbage = _post(client, "/api/v1/bot/flows/import", "flows: [", root, "application/yaml")
    assert garbage.status_code == 400 and "line" in garbage.json()["detail"]


def test_editor_saves_keep_history_and_refuse_a_stale_version(client: TestClient) -> None:
    root = staff_token(client, "root")
    assert _post(client, "/api/v1/bot/flows/import", FLOWS, root, "application/yaml").json() == {
        "created": 3,
        "updated": 0,
        "unchanged": 0,
        "deactivated": 0,
    }
    flow = client.get("/api/v1/bot/flows/block", headers=bearer(root)).json()
    assert (flow["version"], flow["updated_by"]) == (1, "Админ")
    edited = {k: flow[k] for k in ("title", "articles", "topic", "start", "steps")}
    edited["steps"]["bye"]["text"] = "Всего доброго!"
    saved = client.put(
        "/api/v1/bot/flows/block", json={"flow": edited, "version": 1}, headers=bearer(root)
    )
    assert saved.status_code == 200 and saved.json()["version"] == 2
    stale = client.put(
        "/api/v1/bot/flows/block", json={"flow": edited, "version": 1}, headers=bearer(root)
    )
    assert stale.status_code == 409 and "version 2" in stale.json()["detail"]
    history = client.get("/api/v1/bot/flows/block/history", headers=bearer(root)).json()
    assert [(v["version"], v["source"]) for v in history["versions"]] == [
        (2, "edit"),
        (1, "import"),
    ]
    assert history["versions"][0]["content"]["steps"]["bye"]["text"] == "Всего доброго!"
    assert history["versions"][1]["content"]["steps"]["bye"]["text"] == "До свидания!"
    # switched off: gone from the export, still listed with its history
    assert client.delete("/api/v1/bot/flows/block", headers=bearer(root)).status_code == 204
    exported = client.get("/api/v1/bot/flows/export", headers=bearer(root)).json()
    assert "block" not in [f["id"] for f in exported["flows"]]
    listed = {
        f["id"]: f["is_active"]
        for f in client.get("/api/v1/bot/flows", headers=bearer(root)).json()["flows"]
    }
    assert listed == {"atm": True, "balance": True, "block": False}
    # the export reads back unchanged
    import yaml

    again = _post(
        client,
        "/api/v1/bot/flows/import",
        yaml.safe_dump(exported, allow_unicode=True),
        root,
        "application/yaml",
    )
    assert again.json()["unchanged"] == 2


def test_only_admins_change_flows_and_operators_do_not_read_them(client: TestClient) -> None:
    anna, sveta = staff_token(client, "anna"), staff_token(client, "sveta")
    assert client.get("/api/v1/bot/flows", headers=bearer(anna)).status_code == 403
    assert client.get("/api/v1/bot/flows", headers=bearer(sveta)).status_code == 200
    for token in (anna, sveta):
        put = client.put(
            "/api/v1/bot/flows/x", json={"flow": _flow(a={"text": "x"})}, headers=bearer(token)
        )
        assert put.status_code == 403
        assert (
            _post(client, "/api/v1/bot/places/import", PLACES, token, "text/csv").status_code == 403
        )


def test_places_import_names_bad_lines_and_replace_switches_off_the_missing(
    client: TestClient,
) -> None:
    root = staff_token(client, "root")
    bad = (
        PLACES
        + "x-1,bank,Нечто,Москва,адрес,55.1,37.1,,\nx-2,atm,Без широты,Москва,адрес,,37.1,,\nx-3,atm,Далеко,Москва,адрес,95,37.1,,\n"
    )
    response = _post(client, "/api/v1/bot/places/import", bad, root, "text/csv")
    assert response.status_code == 400
    assert [(e["line"], e["problem"]) for e in response.json()["fields"]["errors"]] == [
        (7, "kind must be branch or atm"),
        (8, "lat is empty"),
        (9, "lat must be between -90 and 90"),
    ]
    near = client.get(
        "/api/v1/bot/places", params={"lat": 55.76, "lon": 37.61}, headers=bearer(root)
    )
    assert near.json() == {"places": [], "total": 0}  # nothing of the bad file was stored
    assert (
        _post(client, "/api/v1/bot/places/import", PLACES, root, "text/csv").json()["created"] == 5
    )
    only_moscow = "\n".join(PLACES.strip().splitlines()[:5]) + "\n"
    replaced = _post(
        client, "/api/v1/bot/places/import?replace=true", only_moscow, root, "text/csv"
    ).json()
    assert (replaced["unchanged"], replaced["deactivated"]) == (4, 1)
    kazan = client.get(
        "/api/v1/bot/places", params={"lat": 55.79, "lon": 49.11, "limit": 1}, headers=bearer(root)
    ).json()
    # the Kazan ATM is gone; the nearest is now in Moscow, ~720 km away
    assert kazan["total"] == 4 and kazan["places"][0]["city"] == "Москва"
    assert 700 < kazan["places"][0]["distance_km"] < 740
    missing_header = _post(client, "/api/v1/bot/places/import", "a,b\n1,2\n", root, "text/csv")
    assert missing_header.status_code == 400 and "header lacks" in missing_header.json()["detail"]


def test_distance_is_great_circle() -> None:
    # one degree of latitude is 111.2 km anywhere; Moscow–Saint Petersburg is ~634 km
    assert abs(distance_km(55.0, 37.0, 56.0, 37.0) - 111.2) < 0.1
    assert abs(distance_km(55.7558, 37.6173, 59.9343, 30.3351) - 634) < 5
