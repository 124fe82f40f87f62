"""Output formatting as the docker CLI does it: Go templates, tables, JSON.

``render_template`` runs a subset of Go's text/template (fields, variables,
pipes, if/with/range/else, break/continue, comments, trim markers) with the
builtin functions plus docker's extras (json, join, split, upper, lower,
title, pad, truncate). ``format_rows`` builds ``docker ps``-style output,
aligned like Go's tabwriter; ``format_inspect`` builds ``docker inspect``'s.
"""
from __future__ import annotations

import re

from berth.types.units import _LazyRe, FUNCS, HEADER_FUNCS, go_quote, go_str, go_truth, go_type, sorted_keys, to_json

__all__ = [
    "TemplateError", "Template", "render_template", "format_rows", "format_inspect",
    "tabwrite", "COMMON_HEADERS",
]


class TemplateError(ValueError):
    """A template failed to parse or execute; str() is Go's message."""


class _Fail(Exception):
    """An execution failure, wrapped with its action's position later."""


class _Loop(Exception):
    """{{break}} or {{continue}}, unwinding to the enclosing range."""


# ---------------------------------------------------------------- lexer

_WS = " \t\r\n"
_TOKEN_RE = _LazyRe(r"""
 (?P<str>"(?:[^"\\]|\\.)*")
|(?P<raw>`[^`]*`)
|(?P<num>[+-]?(?:0[xXoObB][0-9a-fA-F_]+|(?:\d[\d_]*\.?\d*|\.\d+)(?:[eE][+-]?\d+)?))
|(?P<field>(?:\.[^\W\d]\w*)+)
|(?P<var>\$\w*(?:\.[^\W\d]\w*)*)
|(?P<dot>\.)
|(?P<ident>[^\W\d]\w*)
|(?P<declare>:=)
|(?P<op>[|(),=])
""", re.X | re.S)
_KEYWORDS = {"if", "else", "end", "range", "with", "break", "continue", "define", "template",
             "block"}
_ESC_RE = _LazyRe(r"\\(x[0-9a-fA-F]{2}|u[0-9a-fA-F]{4}|U[0-9a-fA-F]{8}|[0-7]{3}|.)", re.S)
_SIMPLE_ESC = {"a": "\a", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t", "v": "\v",
               "\\": "\\", "'": "'", '"': '"'}


def _number(val: str, line: int):
    for conv in (lambda v: int(v, 0), lambda v: float(v.replace("_", ""))):
        try:
            return conv(val)
        except ValueError:
            pass
    raise _err(line, f"bad number syntax: {val!r}")


def _err(line: int, msg: str) -> TemplateError:
    return TemplateError(f"template: :{line}: {msg}")


def _unquote(body: str, line: int) -> str:
    def esc(m):
        e = m.group(1)
        if e in _SIMPLE_ESC:
            return _SIMPLE_ESC[e]
        if len(e) > 1:
            return chr(int(e, 8) if e[0] in "01234567" else int(e[1:], 16))
        raise _err(line, f"invalid syntax: unknown escape \\{e}")
    return _ESC_RE.sub(esc, body)


def _lex(src: str) -> list:
    """Split into ('text', s) and ('action', tokens, line, source) items."""
    items, pos, trim_next = [], 0, False
    while True:
        start = src.find("{{", pos)
        text = src[pos:] if start < 0 else src[pos:start]
        if trim_next:
            text = text.lstrip(_WS)
        p = start + 2
        if start >= 0 and src.startswith("-", p) and src[p + 1:p + 2] in tuple(_WS):
            text, p = text.rstrip(_WS), p + 2
        if text:
            items.append(("text", text))
        if start < 0:
            return items
        line = src.count("\n", 0, start) + 1
        if src.startswith("/*", p):
            end = src.find("*/", p + 2)
            m = re.compile(r"[ \t\r\n]-}}|}}").match(src, end + 2) if end >= 0 else None
            if m is None:
                raise _err(line, "unclosed comment" if end < 0 else
                           "comment ends before closing delimiter")
            pos, trim_next = m.end(), len(m.group()) == 4
            continue
        toks, q = [], p
        while True:
            if q >= len(src):
                raise _err(line, "unclosed action")
            if src.startswith("}}", q):
                pos, trim_next = q + 2, False
                break
            if src[q] in _WS:
                if src.startswith("-}}", q + 1):
                    pos, trim_next = q + 4, True
                    break
                q += 1
                continue
            m = _TOKEN_RE.match(src, q)
            if m is None:
                what = "unterminated quoted string" if src[q] in "\"`" else \
                    f"unexpected {src[q]!r} in command"
                raise _err(line, what)
            toks.append((m.lastgroup, m.group(), m.start(), m.end()))
            q = m.end()
        items.append(("action", toks, line, src[p:q].strip()))


# ---------------------------------------------------------------- parser
# Nodes are tuples: ('text', s), ('action', pipe, line, src),
# (kw, pipe, body, else_body, line, src) for if/with/range, ('break',), ('continue',).
# A pipe is (decl_names, is_assign, commands); a command is a list of operands:
# ('field', names), ('var', name, names), ('dot',), ('lit', v), ('nil',),
# ('func', name), ('pipe', pipe), ('chain', operand, names).

class _Parser:
    def __init__(self, items: list) -> None:
        self.items, self.i, self.vars, self.loops = items, 0, ["$"], 0

    def parse(self) -> list:
        nodes, stop = self.parse_list()
        if stop is not None:
            raise _err(stop[2], f"unexpected {{{{{stop[0]}}}}}")
        return nodes

    def parse_list(self):
        nodes = []
        while self.i < len(self.items):
            item = self.items[self.i]
            self.i += 1
            if item[0] == "text":
                nodes.append(item)
                continue
            _, toks, line, src = item
            kw = toks[0][1] if toks and toks[0][0] == "ident" and toks[0][1] in _KEYWORDS else None
            if kw in ("end", "else"):
                return nodes, (kw, toks[1:], line, src)
            if kw in ("if", "with", "range"):
                nodes.append(self.parse_block(kw, toks[1:], line, src))
            elif kw in ("break", "continue"):
                if not self.loops or len(toks) > 1:
                    raise _err(line, f"{{{{{kw}}}}} outside {{{{range}}}}" if not self.loops
                               else f"unexpected {toks[1][1]!r} in {kw}")
                nodes.append((kw,))
            elif kw:
                raise _err(line, f"{{{{{kw}}}}} is not supported")
            else:
                nodes.append(("action", self.parse_pipe(toks, line, "command"), line, src))
        return nodes, None

    def parse_block(self, kw: str, toks: list, line: int, src: str):
        mark = len(self.vars)
        pipe = self.parse_pipe(toks, line, kw)
        self.loops += kw == "range"
        body, stop = self.parse_list()
        self.loops -= kw == "range"
        if stop is None:
            raise _err(line, "unexpected EOF")
        other, (skw, stoks, sline, ssrc) = [], stop
        if skw == "else" and stoks and stoks[0][0] == "ident" and stoks[0][1] in ("if", "with"):
            other, stoks = [self.parse_block(stoks[0][1], stoks[1:], sline, ssrc)], []
        elif skw == "else":
            if stoks:
                raise _err(sline, f"unexpected {stoks[0][1]!r} in else")
            other, stop = self.parse_list()
            if stop is None or stop[0] != "end":
                raise _err(stop[2] if stop else sline,
                           "expected end; found {{else}}" if stop else "unexpected EOF")
            _, stoks, sline, _ = stop
        if stoks:
            raise _err(sline, f"unexpected {stoks[0][1]!r} in end")
        del self.vars[mark:]
        return (kw, pipe, body, other, line, src)

    def parse_pipe(self, toks: list, line: int, context: str):
        decl, assign, k = [], False, 0
        if toks and toks[0][0] == "var" and "." not in toks[0][1]:
            if len(toks) > 1 and (toks[1][0] == "declare" or toks[1][1] == "="):
                decl, assign, k = [toks[0][1]], toks[1][1] == "=", 2
            elif (context == "range" and len(toks) > 3 and toks[1][1] == "," and
                  toks[2][0] == "var" and "." not in toks[2][1] and toks[3][0] == "declare"):
                decl, k = [toks[0][1], toks[2][1]], 4
        for name in decl if assign else ():
            if name not in self.vars:
                raise _err(line, f"undefined variable {name!r}".replace("'", '"'))
        cmds, k = self.parse_cmds(toks, k, line, False)
        if not cmds:
            raise _err(line, f"missing value for {context}")
        if not assign:
            self.vars.extend(decl)
        return (decl, assign, cmds)

    def parse_cmds(self, toks: list, k: int, line: int, in_paren: bool):
        cmds, cur = [], []
        while True:
            if k >= len(toks):
                if in_paren:
                    raise _err(line, "unclosed left paren")
                break
            kind, val = toks[k][:2]
            if kind == "op" and val == ")":
                if not in_paren:
                    raise _err(line, "unexpected right paren")
                k += 1
                break
            if kind == "op" and val == "|":
                if not cur:
                    raise _err(line, "missing command")
                cmds.append(cur)
                cur, k = [], k + 1
                continue
            node, k = self.operand(toks, k, line)
            cur.append(node)
        if cur:
            cmds.append(cur)
        elif cmds:
            raise _err(line, "missing command")
        return cmds, k

    def operand(self, toks: list, k: int, line: int):
        kind, val, _, end = toks[k]
        k += 1
        if kind == "field":
            node = ("field", val[1:].split("."))
        elif kind == "dot":
            node = ("dot",)
        elif kind == "var":
            name, *names = val.split(".")
            if name not in self.vars:
                raise _err(line, f'undefined variable "{name}"')
            node = ("var", name, names)
        elif kind == "str":
            node = ("lit", _unquote(val[1:-1], line))
        elif kind == "raw":
            node = ("lit", val[1:-1])
        elif kind == "num":
            node = ("lit", _number(val, line))
        elif kind == "ident" and val in ("true", "false"):
            node = ("lit", val == "true")
        elif kind == "ident" and val == "nil":
            node = ("nil",)
        elif kind == "ident" and val not in _KEYWORDS:
            if val not in FUNCS:
                raise _err(line, f'function "{val}" not defined')
            node = ("func", val)
        elif kind == "op" and val == "(":
            cmds, k = self.parse_cmds(toks, k, line, True)
            if not cmds:
                raise _err(line, "missing value for parenthesized pipeline")
            node, end = ("pipe", ([], False, cmds)), toks[k - 1][3]
            while k < len(toks) and toks[k][0] == "field" and toks[k][2] == end:
                node, end, k = ("chain", node, toks[k][1][1:].split(".")), toks[k][3], k + 1
        else:
            raise _err(line, f"unexpected {val!r} in operand")
        return node, k


# ---------------------------------------------------------------- executor

class _Exec:
    def __init__(self, root, funcs: dict) -> None:
        self.vars, self.funcs, self.out = [["$", root]], funcs, []

    def walk(self, nodes: list, dot) -> None:
        for node in nodes:
            tag = node[0]
            if tag == "text":
                self.out.append(node[1])
            elif tag in ("break", "continue"):
                raise _Loop(tag)
            elif tag == "action":
                value = self.guard(node, self.pipe, node[1], dot, True)
                if not node[1][0]:
                    self.out.append(go_str(value))
            else:
                mark = len(self.vars)
                if tag == "range":
                    self.range(node, dot)
                else:
                    value = self.guard(node, self.pipe, node[1], dot, True)
                    if go_truth(value):
                        self.walk(node[2], value if tag == "with" else dot)
                    else:
                        self.walk(node[3], dot)
                del self.vars[mark:]

    def guard(self, node, fn, *args):
        try:
            return fn(*args)
        except _Fail as e:
            raise TemplateError(f'template: :{node[-2]}: executing "" at <{node[-1]}>: {e}') \
                from None

    def range(self, node, dot) -> None:
        _, pipe, body, other, *_ = node
        value = self.guard(node, self.pipe, pipe, dot, False)
        if isinstance(value, dict):
            pairs = [(k, value[k]) for k in sorted_keys(value)]
        elif isinstance(value, (list, tuple)):
            pairs = list(enumerate(value))
        elif isinstance(value, int) and not isinstance(value, bool):
            pairs = [(i, i) for i in range(value)]
        elif value is None:
            pairs = []
        else:
            self.guard(node, self.fail, f"range can't iterate over {go_str(value, False)}")
        mark = len(self.vars)
        for key, elem in pairs:
            del self.vars[mark:]
            names = pipe[0]
            if len(names) == 1:
                self.vars.append([names[0], elem])
            elif len(names) == 2:
                self.vars += [[names[0], key], [names[1], elem]]
            try:
                self.walk(body, elem)
            except _Loop as e:
                if e.args[0] == "break":
                    break
        if not pairs:
            self.walk(other, dot)

    @staticmethod
    def fail(msg: str):
        raise _Fail(msg)

    def pipe(self, pipe, dot, bind: bool):
        decl, assign, cmds = pipe
        value = _NOARG = object()
        for cmd in cmds:
            value = self.command(cmd, dot, value, _NOARG)
        if bind and decl:
            if assign:
                next(v for v in reversed(self.vars) if v[0] == decl[0])[1] = value
            else:
                self.vars.append([decl[0], value])
        return value

    def command(self, cmd: list, dot, final, noarg):
        head = cmd[0]
        if head[0] != "func":
            if len(cmd) > 1 or final is not noarg:
                self.fail(f"can't give argument to non-function {_node_src(head)}")
            if head[0] == "nil":
                self.fail("nil is not a command")
            return self.arg(head, dot)
        name, rest = head[1], cmd[1:]
        if name in ("and", "or"):
            if not rest and final is noarg:
                self.fail(f"wrong number of args for {name}: want at least 1 got 0")
            value = None
            for item in rest + ([("lit", final)] if final is not noarg else []):
                value = self.arg(item, dot)
                if go_truth(value) == (name == "or"):
                    break
            return value
        args = [self.arg(a, dot) for a in rest] + ([] if final is noarg else [final])
        return self.call(name, args)

    def call(self, name: str, args: list):
        try:
            return self.funcs[name](*args)
        except TypeError as e:
            raise _Fail(f"wrong number or type of args for {name}: {e}") from None
        except (ValueError, KeyError, IndexError) as e:
            raise _Fail(f"error calling {name}: {e}") from None

    def arg(self, node, dot):
        tag = node[0]
        if tag == "dot":
            return dot
        if tag == "field":
            return self.fields(dot, node[1])
        if tag == "var":
            value = next(v for v in reversed(self.vars) if v[0] == node[1])[1]
            return self.fields(value, node[2])
        if tag == "lit":
            return node[1]
        if tag == "nil":
            return None
        if tag == "func":
            return self.call(node[1], [])
        if tag == "pipe":
            return self.pipe(node[1], dot, False)
        return self.fields(self.arg(node[1], dot), node[2])  # chain

    def fields(self, value, names: list):
        prev = None
        for name in names:
            if value is None:
                if prev is None:  # nil data: Go yields the zero value
                    return None
                self.fail(f'map has no entry for key "{prev[0]}"' if prev[1] else
                          f"nil pointer evaluating interface {{}}.{name}")
            if isinstance(value, dict):
                prev = (name, name not in value)
                value = value.get(name)
            elif isinstance(value, (str, int, float, list, tuple)) or name.startswith("_") \
                    or not hasattr(value, name):
                self.fail(f"can't evaluate field {name} in type {go_type(value)}")
            else:
                prev, value = (name, False), getattr(value, name)
        return value


def _node_src(node) -> str:
    tag = node[0]
    if tag == "field":
        return "." + ".".join(node[1])
    if tag == "var":
        return ".".join([node[1], *node[2]])
    if tag == "lit":
        return go_quote(node[1]) if isinstance(node[1], str) else go_str(node[1])
    return {"dot": ".", "nil": "nil"}.get(tag, "(...)")


# ---------------------------------------------------------------- public API

class Template:
    """A parsed Go template; ``render(data)`` executes it."""

    def __init__(self, src: str) -> None:
        self.src = src
        self.nodes = _Parser(_lex(src)).parse()

    def render(self, data, funcs: dict | None = None) -> str:
        ex = _Exec(data, funcs or FUNCS)
        ex.walk(self.nodes, data)
        return "".join(ex.out)

    def fields(self) -> list[str]:
        """First names of every ``.Field`` reference, in order, without repeats."""
        found: dict[str, None] = {}

        def visit(x):
            if isinstance(x, tuple) and x and x[0] == "field":
                found.setdefault(x[1][0])
            elif isinstance(x, (tuple, list)):
                for y in x:
                    visit(y)
        visit(self.nodes)
        return list(found)


def render_template(tmpl: str, data) -> str:
    """Parse and execute a Go template against ``data``; TemplateError on failure."""
    return Template(tmpl).render(data)


def tabwrite(text: str, padding: int = 3, minwidth: int = 0) -> str:
    """Align tab-separated cells as Go's tabwriter (padchar ' ', no flags).

    A column's width is that of its widest cell plus ``padding``, computed over
    each block of consecutive lines having that column; the text after a
    line's last tab is not a cell and is written as is.
    """
    rows = [line.split("\t") for line in text.split("\n")]
    widths: list[list[int]] = [[] for _ in rows]

    def block(lo: int, hi: int, col: int) -> None:
        i = lo
        while i < hi:
            if col >= len(rows[i]) - 1:
                i += 1
                continue
            j, width = i, minwidth
            while j < hi and col < len(rows[j]) - 1:
                width = max(width, len(rows[j][col]) + padding)
                j += 1
            for k in range(i, j):
                widths[k].append(width)
            block(i, j, col + 1)
            i = j
    block(0, len(rows), 0)
    return "\n".join("".join(c.ljust(w) for c, w in zip(r, ws)) + r[-1]
                     for r, ws in zip(rows, widths))


# Header texts the docker CLI uses for common fields; callers add their own
# (e.g. "ID": "CONTAINER ID") through format_rows' ``headers``.
COMMON_HEADERS = {
    "Names": "NAMES", "Name": "NAME", "Image": "IMAGE", "Command": "COMMAND",
    "CreatedSince": "CREATED", "RunningFor": "CREATED", "CreatedAt": "CREATED AT",
    "Status": "STATUS", "Ports": "PORTS", "Size": "SIZE", "Repository": "REPOSITORY",
    "Tag": "TAG", "Digest": "DIGEST", "Driver": "DRIVER", "Scope": "SCOPE",
    "Mountpoint": "MOUNTPOINT", "LocalVolumes": "LOCAL VOLUMES", "Networks": "NETWORKS",
    "State": "STATE", "CPUPerc": "CPU %", "MemUsage": "MEM USAGE / LIMIT", "MemPerc": "MEM %",
    "NetIO": "NET I/O", "BlockIO": "BLOCK I/O", "PIDs": "PIDS", "Container": "CONTAINER",
}
_CAMEL = _LazyRe(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])")


def _default_header(field: str) -> str:
    return _CAMEL.sub(" ", field).upper()


def format_rows(rows: list[dict], fmt: str | None, default_table: str,
                headers: dict[str, str] | None = None) -> str:
    """Format list output (``docker ps``, ``images`` ...) as the docker CLI does.

    ``fmt`` None, "" or "table" uses ``default_table``; "json" prints one JSON
    object per row; "table TEMPLATE" prints a header and tabwriter-aligned
    rows; any other template prints one rendered line per row. A literal
    backslash-t / backslash-n in ``fmt`` means tab / newline. Lines are joined
    with newlines, without a trailing one (callers ``print()`` the result).
    """
    if not fmt or fmt == "table":
        fmt = default_table
    elif fmt == "json":
        fmt = "{{json .}}"
    table = fmt.startswith("table")
    body = (fmt[5:] if table else fmt).strip(" ").replace("\\t", "\t").replace("\\n", "\n")
    tmpl = Template(body)
    # Docker marshals its row contexts as maps, so {{json .}} has sorted keys.
    lines = [tmpl.render(dict(sorted(r.items())) if isinstance(r, dict) else r) for r in rows]
    if not table:
        return "\n".join(lines)
    names = {**COMMON_HEADERS, **(headers or {})}
    ctx = {f: names.get(f) or _default_header(f) for f in tmpl.fields()}
    try:
        header = tmpl.render(ctx, HEADER_FUNCS)
    except TemplateError:
        header = ""
    return tabwrite("\n".join([header, *lines]), minwidth=10)  # the docker CLI: minwidth 10, padding 3


def format_inspect(objs: list, fmt: str | None) -> str:
    """``docker inspect`` output: a 4-space indented JSON array, or one
    rendered template per object; no trailing newline."""
    if not fmt or fmt == "json":
        return to_json(list(objs), indent=4)
    tmpl = Template(fmt)
    return "\n".join(tmpl.render(o) for o in objs)


def print_inspect(fetch, names: list[str], fmt: str | None) -> int:
    """``docker network|volume inspect``: each object by ``fetch(name)``, printed as one JSON array or one
    template line each, then the daemon's errors; exit 64 for a bad template, 1 when any name failed."""
    import sys
    from berth.errors import BerthError
    if fmt and fmt != "json":
        try:
            Template(fmt)
        except TemplateError as e:
            print(f"template parsing error: {e}", file=sys.stderr)
            return 64
    found, errors = [], []
    for n in names:
        try:
            found.append(fetch(n))
        except BerthError as e:
            errors.append(f"Error response from daemon: {e.message}")
    try:
        text = format_inspect(found, fmt)
    except TemplateError as e:
        errors.append(f"template parsing error: {e}")
        text = ""
    if found or not fmt:
        print(text)
    for e in errors:
        print(e, file=sys.stderr)
    return 1 if errors else 0
