"""Small walks over generated JSON Schemas, shared by the AsyncAPI and OpenAPI builders."""

from typing import Any


def reachable(roots: list[Any], definitions: dict[str, Any]) -> set[str]:
    """Names of the ``definitions`` that ``roots`` refer to (``$ref``), directly or not."""
    seen: set[str] = set()
    stack = list(roots)
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            ref = node.get("$ref", "")
            name = ref.rpartition("/")[2] if isinstance(ref, str) else ""
            if name in definitions and name not in seen:
                seen.add(name)
                stack.append(definitions[name])
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    return seen


def set_additional_properties(node: Any, allowed: bool) -> None:
    """Say whether unknown fields are allowed on every object schema under ``node``
    that does not say so already (an envelope's extension attributes keep theirs).

    Only schemas of ``"type": "object"``: partial constraints such as the
    ``if``/``then`` branches pinning a policy's options to its account type
    have properties too, and closing those would close the whole object.
    """
    if isinstance(node, dict):
        closable = node.get("type") == "object" and "properties" in node
        if closable and "additionalProperties" not in node:
            node["additionalProperties"] = allowed
        for value in node.values():
            set_additional_properties(value, allowed)
    elif isinstance(node, list):
        for value in node:
            set_additional_properties(value, allowed)
