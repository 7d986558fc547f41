"""The JSON API's `fields=` partial-response selector (e.g. items(name,size),nextPageToken)."""

import re


def parse_fields(spec):
    """Parses a `fields` partial-response selector into a tree {name: subtree-or-None}."""
    pos = 0

    def parse_item():
        """A name, then a /path, a (list) or nothing: returns (name, subtree-or-None)."""
        nonlocal pos
        m = re.compile(r"[A-Za-z0-9_*]+").match(spec, pos)
        if not m:
            raise ValueError("bad fields selector")
        name = m.group(0)
        pos = m.end()
        if pos < len(spec) and spec[pos] == "/":
            pos += 1
            return name, parse_path()
        if pos < len(spec) and spec[pos] == "(":
            pos += 1
            sub = parse_list()
            if pos >= len(spec) or spec[pos] != ")":
                raise ValueError("bad fields selector")
            pos += 1
            return name, sub
        return name, None

    def parse_list():
        nonlocal pos
        tree = {}
        while True:
            name, sub = parse_item()
            if name in tree and tree[name] is not None and sub is not None:
                tree[name].update(sub)
            elif name in tree and (tree[name] is None or sub is None):
                tree[name] = None
            else:
                tree[name] = sub
            if pos < len(spec) and spec[pos] == ",":
                pos += 1
                continue
            return tree

    def parse_path():
        name, sub = parse_item()
        return {name: sub}

    spec = spec.replace(" ", "")
    tree = parse_list()
    if pos != len(spec):
        raise ValueError("bad fields selector")
    return tree


def apply_fields(value, tree):
    if tree is None:
        return value
    if isinstance(value, list):
        return [apply_fields(v, tree) for v in value]
    if not isinstance(value, dict):
        return value
    if "*" in tree:
        return value
    out = {}
    for k, sub in tree.items():
        if k in value:
            out[k] = apply_fields(value[k], sub)
    return out
