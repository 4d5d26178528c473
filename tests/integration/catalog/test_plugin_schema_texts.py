"""The console builds plugin forms from the JSON Schemas at /api/v1/plugins/: every setting, at
any depth, carries the title and description the form shows (a setting added without them fails
here), written for people: no raw field names, no Markdown backticks."""

import pytest

pytestmark = pytest.mark.django_db


def _settings(schema: dict, where: str = ""):
    """(path, property schema) for every property, nested objects and list items included."""
    for name, field in (schema.get("properties") or {}).items():
        yield f"{where}{name}", field
        yield from _settings(field, f"{where}{name}.")
        if isinstance(field.get("items"), dict):
            yield from _settings(field["items"], f"{where}{name}[].")


def test_every_plugin_setting_has_a_title_and_a_description_for_people(cw):
    plugins = cw.client().get("/api/v1/plugins/").json()["plugins"]
    assert len(plugins) >= 14
    seen = 0
    for plugin in plugins:
        assert "`" not in plugin["description"], plugin["name"]
        for path, field in _settings(plugin["schema"]):
            seen += 1
            where = f"{plugin['name']}.{path}"
            title, description = field.get("title", ""), field.get("description", "")
            assert title and description, f"{where} needs a title and a description"
            assert "`" not in title + description, where
            assert "_" not in title, f"{where}: {title!r} reads as a field name"
            assert title[0].isupper(), where
    assert seen > 40
