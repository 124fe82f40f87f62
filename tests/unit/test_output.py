"""Go templates, tables and inspect output (berth.cli.output)."""
from __future__ import annotations

import json

import pytest

from berth.cli.output import (
    Template, TemplateError, format_inspect, format_rows, render_template, tabwrite,
)

PS_TABLE = ("table {{.ID}}\t{{.Image}}\t{{.Command}}\t{{.CreatedSince}}\t{{.Status}}\t"
            "{{.Ports}}\t{{.Names}}")
PS_HEADERS = {"ID": "CONTAINER ID", "CreatedSince": "CREATED"}
ROWS = [
    {"ID": "4c01db0b339c", "Image": "busybox", "Command": '"sh"', "CreatedSince": "2 minutes ago",
     "Status": "Up 2 minutes", "Ports": "", "Names": "web"},
    {"ID": "d7886598dbe2", "Image": "nginx:latest", "Command": '"/docker-entrypoint.…"',
     "CreatedSince": "3 hours ago", "Status": "Exited (0) 3 seconds ago",
     "Ports": "0.0.0.0:8080->80/tcp", "Names": "proxy"},
]
INSPECT = {
    "Id": "4c01db0b339c" + "0" * 52, "Name": "/web",
    "State": {"Status": "running", "Running": True, "Pid": 4242, "ExitCode": 0, "Health": None},
    "Config": {"Image": "busybox", "Env": ["PATH=/bin", "A=1"], "Cmd": ["sh", "-c", "true"],
               "Labels": {"a.b": "c", "com.example": "x<y", "z": "last"}},
    "NetworkSettings": {"Networks": {"bridge": {"IPAddress": "172.17.0.2"}}},
}


def r(tmpl, data=INSPECT):
    return render_template(tmpl, data)


# ---------------------------------------------------------------- tables

def test_ps_default_table_alignment():
    out = format_rows(ROWS, None, PS_TABLE, PS_HEADERS)
    assert out == (
        "CONTAINER ID   IMAGE          COMMAND                  CREATED         "
        "STATUS                     PORTS                  NAMES\n"
        '4c01db0b339c   busybox        "sh"                     2 minutes ago   '
        "Up 2 minutes                                      web\n"
        'd7886598dbe2   nginx:latest   "/docker-entrypoint.…"   3 hours ago     '
        "Exited (0) 3 seconds ago   0.0.0.0:8080->80/tcp   proxy"
    )


def test_table_keyword_alone_uses_default():
    assert format_rows(ROWS, "table", PS_TABLE, PS_HEADERS) == \
        format_rows(ROWS, "", PS_TABLE, PS_HEADERS)


def test_table_with_escaped_tab_from_command_line():
    out = format_rows(ROWS, r"table {{.ID}}\t{{.Names}}", PS_TABLE, PS_HEADERS)
    assert out == ("CONTAINER ID   NAMES\n"
                   "4c01db0b339c   web\n"
                   "d7886598dbe2   proxy")


def test_table_header_only_when_no_rows():
    assert format_rows([], None, PS_TABLE, PS_HEADERS).startswith("CONTAINER ID   IMAGE")
    assert "\n" not in format_rows([], None, PS_TABLE, PS_HEADERS)


def test_table_headers_default_and_functions_pass_through():
    rows = [{"LocalVolumes": "3", "Names": "web", "Type": "x"}]
    out = format_rows(rows, r"table {{.Type}}\t{{upper .Names}}\t{{json .LocalVolumes}}", "")
    # The docker CLI's tabwriter: minimum width 10, padding 3.
    assert out.splitlines() == ["TYPE      NAMES     LOCAL VOLUMES", 'x         WEB       "3"']


def test_non_table_template_one_line_per_row_no_header():
    out = format_rows(ROWS, r"{{.Names}}: {{.Status}}", PS_TABLE, PS_HEADERS)
    assert out == "web: Up 2 minutes\nproxy: Exited (0) 3 seconds ago"
    assert format_rows(ROWS, r"{{.ID}}\t{{.Names}}", "", {}) == \
        "4c01db0b339c\tweb\nd7886598dbe2\tproxy"
    assert format_rows([], r"{{.ID}}", PS_TABLE, {}) == ""


def test_json_format_one_object_per_line_sorted_keys():
    out = format_rows(ROWS, "json", PS_TABLE, PS_HEADERS)
    lines = out.splitlines()
    assert len(lines) == 2 and not out.endswith("\n")
    assert json.loads(lines[0]) == ROWS[0]
    assert lines[0].startswith('{"Command":"\\"sh\\"","CreatedSince":"2 minutes ago","ID":')
    assert "0.0.0.0:8080-\\u003e80/tcp" in lines[1]  # Go escapes < > & in JSON
    assert format_rows(ROWS, "{{json .}}", "", {}) == out


def test_tabwriter_blocks_and_trailing_cells():
    assert tabwrite("a\tbb\tc\nccc\td\te") == "a     bb   c\nccc   d    e"
    # A line without the column ends the block; widths restart after it.
    assert tabwrite("aaaa\tx\nno tabs\nb\ty") == "aaaa   x\nno tabs\nb   y"
    assert tabwrite("\tx\n\ty") == "   x\n   y"
    assert tabwrite("a\t\n") == "a   \n"


# ---------------------------------------------------------------- inspect

def test_inspect_default_is_indented_json_array():
    out = format_inspect([INSPECT], None)
    assert out.startswith('[\n    {\n        "Id": "4c01db0b339c')
    assert out.endswith("\n    }\n]")
    assert json.loads(out) == [INSPECT]
    assert "x\\u003cy" in out
    assert format_inspect([], None) == "[]"
    assert format_inspect([INSPECT], "json") == out


def test_inspect_with_format_one_line_per_object():
    objs = [INSPECT, dict(INSPECT, Name="/db", State={"Status": "exited"})]
    assert format_inspect(objs, "{{.Name}} {{.State.Status}}") == "/web running\n/db exited"
    assert format_inspect([], "{{.Name}}") == ""


# ---------------------------------------------------------------- templates

@pytest.mark.parametrize("tmpl, out", [
    ("{{.Name}}", "/web"),
    ("{{.State.Status}}", "running"),
    ("{{.State.Pid}}", "4242"),
    ("{{.State.Running}}", "true"),
    ("{{.Config.Labels.z}}", "last"),
    ('{{index .Config.Labels "a.b"}}', "c"),
    ('{{index .Config.Labels "missing"}}', "<no value>"),
    ("{{index .Config.Cmd 1}}", "-c"),
    ("{{.Missing}}", "<no value>"),
    ("{{.Config.Labels.missing}}", "<no value>"),
    ("{{.State.Health}}", "<no value>"),
    ("{{.Config.Env}}", "[PATH=/bin A=1]"),
    ("{{.Config.Labels}}", "map[a.b:c com.example:x<y z:last]"),
    ('{{(index .NetworkSettings.Networks "bridge").IPAddress}}', "172.17.0.2"),
    ("{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}", "172.17.0.2"),
    ("{{json .Config.Cmd}}", '["sh","-c","true"]'),
    ("{{.Config.Cmd | json}}", '["sh","-c","true"]'),
    ("{{json .Config.Labels}}", '{"a.b":"c","com.example":"x\\u003cy","z":"last"}'),
    ("{{json .State.Health}}", "null"),
    ("{{upper .State.Status}} {{lower \"ABC\"}} {{title \"hello big-world\"}}",
     "RUNNING abc Hello Big-World"),
    ('{{join .Config.Env ","}}', "PATH=/bin,A=1"),
    ('{{split "a,b,c" ","}}', "[a b c]"),
    ('{{len .Config.Env}} {{len .Config.Labels}} {{len "héllo"}}', "2 3 6"),
    ("{{println .Name}}", "/web\n"),
    ('{{printf "%s-%d" .Name .State.Pid}}', "/web-4242"),
    ('{{printf "%v|%q|%5.1f" .Config.Cmd .Name 2.25}}', '[sh -c true]|"/web"|  2.2'),
    ('{{.Name | printf "%s!"}}', "/web!"),
    ('{{print "a" 1 2 "b"}}', "a1 2b"),
    ('{{pad "x" 1 2}}|{{truncate "abcdef" 3}}', " x  |abc"),
    ("{{range .Config.Env}}[{{.}}]{{end}}", "[PATH=/bin][A=1]"),
    ("{{range $i, $e := .Config.Env}}{{$i}}:{{$e}} {{end}}", "0:PATH=/bin 1:A=1 "),
    ("{{range $k, $v := .Config.Labels}}{{$k}}={{$v}} {{end}}", "a.b=c com.example=x<y z=last "),
    ("{{range $v := .Config.Labels}}{{$v}},{{end}}", "c,x<y,last,"),
    ("{{range .Nothing}}x{{else}}empty{{end}}", "empty"),
    ("{{range .Config.Env}}{{if eq . \"A=1\"}}{{break}}{{end}}{{.}};{{end}}", "PATH=/bin;"),
    ("{{range .Config.Env}}{{if eq . \"PATH=/bin\"}}{{continue}}{{end}}{{.}}{{end}}", "A=1"),
    ("{{range 3}}{{.}}{{end}}", "012"),
    ("{{range .Config.Cmd}}{{$.Name}}{{end}}", "/web/web/web"),
    ("{{if .State.Running}}up{{else}}down{{end}}", "up"),
    ("{{if .State.Health}}h{{else}}none{{end}}", "none"),
    ('{{if eq .State.Status "running"}}yes{{end}}', "yes"),
    ('{{if eq .State.Status "a" "b" "running"}}any{{end}}', "any"),
    ('{{if ne .State.Status "exited"}}ne{{end}}', "ne"),
    ("{{if not .State.ExitCode}}zero{{end}}", "zero"),
    ("{{if and .State.Running .Name}}both{{end}}", "both"),
    ("{{and .State.Running .Missing 1}}|{{or .Missing \"\" \"x\"}}|{{or 0 \"\"}}",
     "<no value>|x|"),
    ("{{if gt .State.Pid 100}}big{{end}}{{if lt 1 2.5}}<{{end}}{{if le \"a\" \"b\"}}s{{end}}",
     "big<s"),
    ('{{if eq .State.Status "x"}}1{{else if .State.Running}}2{{else}}3{{end}}', "2"),
    ("{{with .Config}}{{.Image}}{{end}}", "busybox"),
    ("{{with .State.Health}}h{{else}}no health{{end}}", "no health"),
    ("{{$n := .Name}}{{range .Config.Cmd}}{{$n}}{{end}}", "/web/web/web"),
    ("{{$x := 1}}{{if true}}{{$x = 2}}{{end}}{{$x}}", "2"),
    ("{{- .Name -}}", "/web"),
    ("a  {{- .Name -}}  \n b", "a/webb"),
    ("a {{- /* comment */ -}} b{{/* another */}}", "ab"),
    ("{{ .Name }}  {{- \" x\" }}", "/web x"),
    ('{{"a\\tb\\u00e9\\x41"}}', "a\tbéA"),
    ("{{`raw\\n`}}", "raw\\n"),
    ("{{1}} {{-2}} {{1.5}} {{0x10}} {{true}} {{print nil}}", "1 -2 1.5 16 true <nil>"),
    ("{{.}}", "map[Config:map[Cmd:[sh -c true] Env:[PATH=/bin A=1] Image:busybox Labels:"
              "map[a.b:c com.example:x<y z:last]] Id:" + INSPECT["Id"] + " Name:/web "
              "NetworkSettings:map[Networks:map[bridge:map[IPAddress:172.17.0.2]]] "
              "State:map[ExitCode:0 Health:<nil> Pid:4242 Running:true Status:running]]"),
    ("plain text", "plain text"),
    ("", ""),
])
def test_render(tmpl, out):
    assert r(tmpl) == out


def test_json_of_dot_keeps_key_order():
    assert r("{{json .State}}") == \
        '{"Status":"running","Running":true,"Pid":4242,"ExitCode":0,"Health":null}'


def test_render_scalars_and_lists():
    assert render_template("{{.}}", None) == "<no value>"
    assert render_template("{{.}}", 2.0) == "2"
    assert render_template("{{range .}}{{.}} {{end}}", [1, "a", None, False]) == "1 a <no value> false "


def test_template_fields():
    assert Template(PS_TABLE[6:]).fields() == ["ID", "Image", "Command", "CreatedSince",
                                                "Status", "Ports", "Names"]


@pytest.mark.parametrize("tmpl, msg", [
    ("{{.Name", "unclosed action"),
    ("{{if .Name}}x", "unexpected EOF"),
    ("{{range .X}}x{{else}}y", "unexpected EOF"),
    ("{{end}}", "unexpected {{end}}"),
    ("{{else}}", "unexpected {{else}}"),
    ("{{nosuchfunc .Name}}", 'function "nosuchfunc" not defined'),
    ("{{$x}}", 'undefined variable "$x"'),
    ("{{$x = 1}}", 'undefined variable "$x"'),
    ("{{}}", "missing value for command"),
    ("{{if}}x{{end}}", "missing value for if"),
    ('{{"abc}}', "unterminated quoted string"),
    ("{{.Name | }}", "missing command"),
    ("{{(.Name}}", "unclosed left paren"),
    ("{{.Name)}}", "unexpected right paren"),
    ("{{break}}", "{{break}} outside {{range}}"),
    ("{{/* x }}", "unclosed comment"),
    ("{{define \"x\"}}{{end}}", "not supported"),
    ('{{"\\q"}}', "unknown escape"),
    ("{{.Name ! }}", "unexpected '!'"),
    ("{{if .X}}{{else}}{{else}}{{end}}", "expected end"),
])
def test_parse_errors(tmpl, msg):
    with pytest.raises(TemplateError) as e:
        Template(tmpl)
    assert msg in str(e.value)
    assert str(e.value).startswith("template: :1: ")


@pytest.mark.parametrize("tmpl, msg", [
    ("{{.State.Health.Status}}", "nil pointer evaluating interface {}.Status"),
    ("{{.Nope.Status}}", 'map has no entry for key "Nope"'),
    ("{{.Name.Foo}}", "can't evaluate field Foo in type string"),
    ("{{index .Config.Cmd 5}}", "error calling index: index out of range: 5"),
    ("{{len .State.Pid}}", "error calling len: len of type int"),
    ('{{upper .State.Pid}}', "expected string; got int"),
    ('{{eq .State.Pid "1"}}', "incompatible types for comparison"),
    ("{{.Name | .State}}", "can't give argument to non-function .State"),
    ("{{nil}}", "nil is not a command"),
    ("{{range .Name}}{{end}}", "range can't iterate over /web"),
    ("{{join .Name \",\"}}", "expected []string"),
])
def test_exec_errors(tmpl, msg):
    with pytest.raises(TemplateError) as e:
        r(tmpl)
    assert msg in str(e.value)
    assert str(e.value).startswith('template: :1: executing "" at <')


def test_exec_error_reports_action_and_line():
    with pytest.raises(TemplateError) as e:
        r("line1\n{{.State.Nope.Status}}")
    assert str(e.value) == ('template: :2: executing "" at <.State.Nope.Status>: '
                            'map has no entry for key "Nope"')


def test_template_error_is_value_error():
    assert issubclass(TemplateError, ValueError)


def test_format_rows_bad_template_raises():
    with pytest.raises(TemplateError):
        format_rows(ROWS, "table {{.ID", PS_TABLE, PS_HEADERS)
