"""A strict parser and evaluator for ConnectWise Manage's ``conditions`` language.

Supported grammar (keywords case-insensitive, as ConnectWise's are)::

    expr       := term (OR term)*
    term       := factor (AND factor)*
    factor     := NOT factor | "(" expr ")" | comparison
    comparison := path ("=" | "!=" | "<" | "<=" | ">" | ">=") value
                | path [NOT] LIKE string        (``*`` and ``%`` are wildcards)
                | path CONTAINS string
                | path [NOT] IN "(" value ("," value)* ")"
    path       := name ("/" name)*              (``company/id``)
    value      := "string" | number | true | false | null | [2024-01-31T00:00:00Z]

Strings are double-quoted; ``\\"`` and ``\\\\`` escape inside them. Anything
else is a :class:`ConditionError` (the simulator's 400), so a client that
builds a condition ConnectWise would refuse fails here too.

Evaluation follows SQL Server's default collation, which ConnectWise runs on:
string comparisons ignore case. A comparison between different types (a
string with a number) is false rather than an error. Field names are checked
against the entity's schema and are case-sensitive (stricter than ConnectWise,
which is lenient about their case: a client that spells them as documented
works on both).
"""

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

Schema = Mapping[str, Any]
"""Field name -> None (a scalar), a nested Schema, or a one-element list [Schema] (a list)."""


class ConditionError(ValueError):
    """The condition cannot be parsed, or names a field the entity does not have."""


@dataclass(frozen=True)
class Compare:
    path: tuple[str, ...]
    op: str
    value: Any


@dataclass(frozen=True)
class Not:
    item: "Node"


@dataclass(frozen=True)
class BoolOp:
    op: str  # "and" | "or"
    items: tuple["Node", ...]


Node = Compare | Not | BoolOp

_TOKEN = re.compile(
    r"""\s*(?:
        (?P<string>"(?:[^"\\]|\\.)*")
      | (?P<datetime>\[[^\]]*\])
      | (?P<number>-?\d+(?:\.\d+)?(?![\w/]))
      | (?P<op><=|>=|!=|<>|=|<|>)
      | (?P<punct>[(),])
      | (?P<name>[A-Za-z_][A-Za-z0-9_]*(?:/[A-Za-z_][A-Za-z0-9_]*)*)
    )""",
    re.VERBOSE,
)
_KEYWORDS = {"and", "or", "not", "like", "contains", "in", "true", "false", "null"}


@dataclass(frozen=True)
class _Tok:
    kind: str
    text: str
    pos: int


def _tokenize(text: str) -> list[_Tok]:
    tokens: list[_Tok] = []
    pos = 0
    while pos < len(text):
        if text[pos:].strip() == "":
            break
        match = _TOKEN.match(text, pos)
        if match is None or match.end() == pos:
            raise ConditionError(f"unexpected character {text[pos:].lstrip()[:1]!r} at {pos}")
        group = match.lastgroup or ""
        value = match.group(group)
        kind = value.lower() if group == "name" and value.lower() in _KEYWORDS else group
        tokens.append(_Tok(kind, value, match.start(group)))
        pos = match.end()
    return tokens


class _Parser:
    def __init__(self, text: str) -> None:
        self.tokens = _tokenize(text)
        self.i = 0

    def peek(self, *kinds: str) -> bool:
        return self.i < len(self.tokens) and self.tokens[self.i].kind in kinds

    def take(self, *kinds: str) -> _Tok:
        if not self.peek(*kinds):
            found = self.tokens[self.i] if self.i < len(self.tokens) else None
            where = f"{found.text!r} at {found.pos}" if found else "the end"
            raise ConditionError(f"expected {' or '.join(kinds)}, found {where}")
        token = self.tokens[self.i]
        self.i += 1
        return token

    def parse(self) -> Node:
        if not self.tokens:
            raise ConditionError("empty condition")
        node = self.expr()
        if self.i != len(self.tokens):
            token = self.tokens[self.i]
            raise ConditionError(f"unexpected {token.text!r} at {token.pos}")
        return node

    def expr(self) -> Node:
        items = [self.term()]
        while self.peek("or"):
            self.take("or")
            items.append(self.term())
        return items[0] if len(items) == 1 else BoolOp("or", tuple(items))

    def term(self) -> Node:
        items = [self.factor()]
        while self.peek("and"):
            self.take("and")
            items.append(self.factor())
        return items[0] if len(items) == 1 else BoolOp("and", tuple(items))

    def factor(self) -> Node:
        if self.peek("not"):
            self.take("not")
            return Not(self.factor())
        if self.peek("punct") and self.tokens[self.i].text == "(":
            self.take("punct")
            node = self.expr()
            self.close()
            return node
        return self.comparison()

    def close(self) -> None:
        token = self.take("punct")
        if token.text != ")":
            raise ConditionError(f"expected ')' at {token.pos}")

    def comparison(self) -> Node:
        path = tuple(self.take("name").text.split("/"))
        negate = False
        if self.peek("not"):
            self.take("not")
            negate = True
            if not self.peek("like", "in"):
                raise ConditionError("NOT after a field must be followed by LIKE or IN")
        if self.peek("op"):
            op = self.take("op").text
            node: Node = Compare(path, "!=" if op == "<>" else op, self.value())
        elif self.peek("like", "contains"):
            op = self.take("like", "contains").kind
            pattern = self.value()
            if not isinstance(pattern, str):
                raise ConditionError(f"{op.upper()} needs a quoted string")
            node = Compare(path, op, pattern)
        elif self.peek("in"):
            self.take("in")
            opening = self.take("punct")
            if opening.text != "(":
                raise ConditionError(f"expected '(' after IN at {opening.pos}")
            values = [self.value()]
            while self.peek("punct") and self.tokens[self.i].text == ",":
                self.take("punct")
                values.append(self.value())
            self.close()
            node = Compare(path, "in", tuple(values))
        else:
            found = self.tokens[self.i].text if self.i < len(self.tokens) else "the end"
            raise ConditionError(f"expected an operator after {'/'.join(path)}, found {found!r}")
        return Not(node) if negate else node

    def value(self) -> Any:
        token = self.take("string", "number", "datetime", "true", "false", "null")
        if token.kind == "string":
            return re.sub(r"\\(.)", r"\1", token.text[1:-1])
        if token.kind == "number":
            return float(token.text) if "." in token.text else int(token.text)
        if token.kind == "datetime":
            return token.text[1:-1]
        return {"true": True, "false": False, "null": None}[token.kind]


def parse(text: str) -> Node:
    """The syntax tree of a condition string, or :class:`ConditionError`."""
    return _Parser(text).parse()


def paths(node: Node) -> list[tuple[str, ...]]:
    """Every field path the condition names."""
    if isinstance(node, Compare):
        return [node.path]
    if isinstance(node, Not):
        return paths(node.item)
    return [p for item in node.items for p in paths(item)]


def check_paths(node: Node, schema: Schema, *, through_list: bool) -> None:
    """Refuse unknown fields; and fields that cross a list unless ``through_list``.

    ConnectWise takes conditions on an entity's own fields in ``conditions`` and
    on its child collections (``communicationItems/...``) in ``childConditions``.
    """
    for path in paths(node):
        level: Any = schema
        crossed = False
        for part in path:
            if isinstance(level, list):
                level, crossed = level[0], True
            if not isinstance(level, Mapping) or part not in level:
                raise ConditionError(f"unknown field {'/'.join(path)!r}")
            level = level[part]
        if isinstance(level, list):
            crossed = True
        if crossed and not through_list:
            raise ConditionError(f"{'/'.join(path)!r} is a child collection: use childConditions")
        if through_list and not crossed:
            raise ConditionError(f"{'/'.join(path)!r} is not a child collection field")


def _resolve(record: Any, path: Sequence[str]) -> list[Any]:
    """The values at ``path``; a list on the way fans out (any-semantics)."""
    values = [record]
    for part in path:
        nxt: list[Any] = []
        for value in values:
            items = value if isinstance(value, list) else [value]
            nxt.extend(item.get(part) for item in items if isinstance(item, Mapping))
        values = nxt
    flat: list[Any] = []
    for value in values:
        flat.extend(value if isinstance(value, list) else [value])
    return flat or [None]


def _norm(value: Any) -> Any:
    return value.casefold() if isinstance(value, str) else value


def _same_type(a: Any, b: Any) -> bool:
    numeric = (int, float)
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool)
    if isinstance(a, numeric) and isinstance(b, numeric):
        return True
    return type(a) is type(b)


def _like(value: Any, pattern: str) -> bool:
    if not isinstance(value, str):
        return False
    regex = "".join(".*" if c in "*%" else re.escape(c) for c in pattern)
    return re.fullmatch(regex, value, re.IGNORECASE | re.DOTALL) is not None


_ORDER: dict[str, Callable[[Any, Any], bool]] = {
    "<": lambda a, b: a < b,
    "<=": lambda a, b: a <= b,
    ">": lambda a, b: a > b,
    ">=": lambda a, b: a >= b,
}


def _compare_one(value: Any, op: str, literal: Any) -> bool:
    if op in ("=", "!="):
        if literal is None or value is None:
            equal = value is None and literal is None
        else:
            equal = _same_type(value, literal) and _norm(value) == _norm(literal)
        return equal if op == "=" else not equal
    if op == "like":
        return _like(value, literal)
    if op == "contains":
        return isinstance(value, str) and literal.casefold() in value.casefold()
    if op == "in":
        return any(_compare_one(value, "=", item) for item in literal)
    if value is None or literal is None or not _same_type(value, literal):
        return False
    return _ORDER[op](_norm(value), _norm(literal))


def evaluate(node: Node, record: Mapping[str, Any]) -> bool:
    """Whether ``record`` satisfies the condition."""
    if isinstance(node, Compare):
        values = _resolve(record, node.path)
        if node.op == "!=":
            return all(_compare_one(v, "!=", node.value) for v in values)
        return any(_compare_one(v, node.op, node.value) for v in values)
    if isinstance(node, Not):
        return not evaluate(node.item, record)
    results = (evaluate(item, record) for item in node.items)
    return all(results) if node.op == "and" else any(results)


def _strip(node: Node, head: str) -> Node:
    if isinstance(node, Compare):
        return Compare(node.path[1:], node.op, node.value)
    if isinstance(node, Not):
        return Not(_strip(node.item, head))
    return BoolOp(node.op, tuple(_strip(item, head) for item in node.items))


def evaluate_child(node: Node, record: Mapping[str, Any]) -> bool:
    """``childConditions``: true when one child item satisfies the whole condition.

    ``communicationItems/value="a@b.com" AND communicationItems/communicationType="Email"``
    needs one item that is both (the reading of ConnectWise's SQL join that
    a client relies on). A condition naming several collections falls back to
    evaluating each comparison over any item.
    """
    heads = {path[0] for path in paths(node)}
    if len(heads) == 1:
        head = heads.pop()
        items = record.get(head)
        if isinstance(items, list):
            stripped = _strip(node, head)
            return any(evaluate(stripped, item) for item in items if isinstance(item, Mapping))
    return evaluate(node, record)


def sort_key(path: Sequence[str]) -> Callable[[Mapping[str, Any]], tuple[int, Any]]:
    """A sort key for ``orderBy`` (missing values first, as SQL Server sorts NULL)."""

    def key(record: Mapping[str, Any]) -> tuple[int, Any]:
        value = _resolve(record, path)[0]
        if value is None:
            return (0, "")
        return (1, _norm(value) if not isinstance(value, bool) else int(value))

    return key
