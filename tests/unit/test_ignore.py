""".dockerignore semantics (berth.util.dockerignore): moby/patternmatcher's rules, checked on the cases of its own
test table (rewritten here) and on what docker CLI 28 put in the context tar for a set of .dockerignore files
(recorded from the real CLI against a recording server)."""
from __future__ import annotations

import os

import pytest

from berth.util import dockerignore as ignore
from berth.util.dockerignore import Matcher, context_files, ignore_file_for, keep_build_files, read_patterns


# ---------------------------------------------------------------- reading the file

@pytest.mark.parametrize("text, patterns", [
    ("", []),
    ("# a comment\n\n   \nfoo\n", ["foo"]),
    ("\ufeff# BOM then comment\nbar", ["bar"]),
    ("  spaced  \n\tTabbed\t\n", ["spaced", "Tabbed"]),
    ("  # not a comment (not in the first column)\n", ["# not a comment (not in the first column)"]),
    ("!keep\n! spaced\n", ["!keep", "!spaced"]),
    ("/abs/path\n!/abs/keep\n/\n", ["abs/path", "!abs/keep", "/"]),
    ("a/../b\n./c/./d/\ne//f///\n../up\n", ["b", "c/d", "e/f", "../up"]),
    ("crlf\r\n#c\r\nx\r\n", ["crlf", "x"]),
    ("!\n", ["!"]),
    ("**/*.go\n", ["**/*.go"]),
])
def test_read_patterns(text, patterns):
    assert read_patterns(text) == patterns


def test_clean_is_go_filepath_clean():
    cases = {"": ".", ".": ".", "/": "/", "//": "/", "a/": "a", "a/./b": "a/b", "a/../..": "..", "/../a": "/a",
             "a//b": "a/b", "../../x/../y": "../../y", "./": "."}
    assert {k: ignore.clean(k) for k in cases} == cases


# ---------------------------------------------------------------- matching (patternmatcher's own cases)

SINGLE = [
    ("**", "file", True), ("**", "file/", True), ("**/", "file", True), ("**/", "file/", True),
    ("**", "/", True), ("**/", "/", True), ("**", "dir/file", True), ("**/", "dir/file", True),
    ("**", "dir/file/", True), ("**/", "dir/file/", True), ("**/**", "dir/file", True),
    ("**/**", "dir/file/", True), ("dir/**", "dir/file", True), ("dir/**", "dir/file/", True),
    ("dir/**", "dir/dir2/file", True), ("dir/**", "dir/dir2/file/", True), ("**/dir", "dir", True),
    ("**/dir", "dir/file", True), ("**/dir2/*", "dir/dir2/file", True), ("**/dir2/*", "dir/dir2/file/", True),
    ("**/dir2/**", "dir/dir2/dir3/file", True), ("**/dir2/**", "dir/dir2/dir3/file/", True),
    ("**file", "file", True), ("**file", "dir/file", True), ("**/file", "dir/file", True),
    ("**file", "dir/dir/file", True), ("**/file", "dir/dir/file", True), ("**/file*", "dir/dir/file", True),
    ("**/file*", "dir/dir/file.txt", True), ("**/file*txt", "dir/dir/file.txt", True),
    ("**/file*.txt", "dir/dir/file.txt", True), ("**/file*.txt*", "dir/dir/file.txt", True),
    ("**/**/*.txt", "dir/dir/file.txt", True), ("**/**/*.txt2", "dir/dir/file.txt", False),
    ("**/*.txt", "file.txt", True), ("**/**/*.txt", "file.txt", True), ("a**/*.txt", "a/file.txt", True),
    ("a**/*.txt", "a/dir/file.txt", True), ("a**/*.txt", "a/dir/dir/file.txt", True),
    ("a/*.txt", "a/dir/file.txt", False), ("a/*.txt", "a/file.txt", True), ("a/*.txt**", "a/file.txt", True),
    ("a[b-d]e", "ae", False), ("a[b-d]e", "ace", True), ("a[b-d]e", "aae", False), ("a[^b-d]e", "aze", True),
    (".*", ".foo", True), (".*", "foo", False), ("abc.def", "abcdef", False), ("abc.def", "abc.def", True),
    ("abc.def", "abcZdef", False), ("abc?def", "abcZdef", True), ("abc?def", "abcdef", False),
    ("a\\\\", "a\\", True), ("**/foo/bar", "foo/bar", True), ("**/foo/bar", "dir/foo/bar", True),
    ("**/foo/bar", "dir/dir2/foo/bar", True), ("abc/**", "abc", False), ("abc/**", "abc/def", True),
    ("abc/**", "abc/def/ghi", True), ("**/.foo", ".foo", True), ("**/.foo", "bar.foo", False),
    ("a(b)c/def", "a(b)c/def", True), ("a(b)c/def", "a(b)c/xyz", False),
    ("a.|)$(}+{bc", "a.|)$(}+{bc", True),
    ("dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl",
     "dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl", True),
    ("dist/*.whl", "dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl", True),
    ("a\\*b", "a*b", True),
    # a quirk kept from Docker: "**x" is a plain suffix test
    ("**foo", "barfoo", True),
]

MULTI = [
    (["**", "!util/docker/web"], "util/docker/web/foo", False),
    (["**", "!util/docker/web", "util/docker/web/foo"], "util/docker/web/foo", True),
    (["**", "!dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl"],
     "dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl", False),
    (["**", "!dist/*.whl"], "dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl", False),
    (["*.go"], "fileutils.go", True),
    (["!fileutils.go", "*.go"], "fileutils.go", True),
    (["*.go", "!fileutils.go"], "fileutils.go", False),
    (["docs", "!docs/README.md"], "docs/README.md", False),
    (["docs/", "!docs/README.md"], "docs/README.md", False),
    (["docs/*", "!docs/README.md"], "docs/README.md", False),
    (["docs", "!docs/README.md"], "docs/other.md", True),
    (["*.go"], ".", False),  # the context root is never excluded
    ([], "any/path/there", False),
]


def _through_parents(m: Matcher, path: str) -> bool:
    """MatchesUsingParentResults, feeding each parent directory's results to its child (as the walk does;
    the parents as patternmatcher's own test derives them: filepath.Dir, split)."""
    info = None
    parent = ignore._dir(path)
    if parent != ".":
        dirs = parent.split("/")
        for k in range(len(dirs)):
            _, info = m.match_info("/".join(dirs[:k + 1]), info)
    return m.match_info(path, info)[0]


@pytest.mark.parametrize("pattern, path, excluded", SINGLE)
def test_single_pattern(pattern, path, excluded):
    m = Matcher([pattern])
    assert m.excluded(path) == excluded
    assert m.match_info(path)[0] == excluded           # no parent information: parents matched here
    assert _through_parents(m, path) == excluded       # parent information handed down


@pytest.mark.parametrize("patterns, path, excluded", MULTI)
def test_several_patterns_last_match_wins(patterns, path, excluded):
    m = Matcher(patterns)
    assert m.excluded(path) == excluded
    if path != ".":
        assert _through_parents(m, path) == excluded


# Go's filepath.Match table, as patternmatcher runs it through its regexp translation
GO_MATCH = [
    ("abc", "abc", True), ("*", "abc", True), ("*c", "abc", True), ("a*", "a", True), ("a*", "abc", True),
    ("a*", "ab/c", True), ("a*/b", "abc/b", True), ("a*/b", "a/c/b", False),
    ("a*b*c*d*e*/f", "axbxcxdxe/f", True), ("a*b*c*d*e*/f", "axbxcxdxexxx/f", True),
    ("a*b*c*d*e*/f", "axbxcxdxe/xxx/f", False), ("a*b*c*d*e*/f", "axbxcxdxexxx/fff", False),
    ("a*b?c*x", "abxbbxdbxebxczzx", True), ("a*b?c*x", "abxbbxdbxebxczzy", False), ("ab[c]", "abc", True),
    ("ab[b-d]", "abc", True), ("ab[e-g]", "abc", False), ("ab[^c]", "abc", False), ("ab[^b-d]", "abc", False),
    ("ab[^e-g]", "abc", True), ("a\\*b", "a*b", True), ("a\\*b", "ab", False), ("a?b", "a☺b", True),
    ("a[^a]b", "a☺b", True), ("a???b", "a☺b", False), ("a[^a][^a][^a]b", "a☺b", False), ("[a-ζ]*", "α", True),
    ("*[a-ζ]", "A", False), ("a?b", "a/b", False), ("a*b", "a/b", False), ("[\\]a]", "]", True),
    ("[\\-]", "-", True), ("[x\\-]", "x", True), ("[x\\-]", "-", True), ("[x\\-]", "z", False),
    ("[\\-x]", "x", True), ("[\\-x]", "-", True), ("[\\-x]", "a", False), ("*x", "xxx", True),
]


@pytest.mark.parametrize("pattern, name, match", GO_MATCH)
def test_go_match_table(pattern, name, match):
    assert Matcher([pattern]).matches_one_parent(name) == match


@pytest.mark.parametrize("pattern", ["[]a]", "[-]", "[x-]", "[-x]", "\\", "[a-b-c]", "[", "[^", "[^bc", "a[",
                                     "!", "  !  ", "[Local-Only]/"])
def test_bad_patterns_are_refused(pattern):
    with pytest.raises(ValueError) as e:
        Matcher(["ok", pattern])
    assert str(e.value) in (ignore.BAD_PATTERN, 'illegal exclusion pattern: "!"')


@pytest.mark.parametrize("pattern, kind, regex", [
    ("*", "regexp", "[^/]*"), ("file*", "regexp", "file[^/]*"), ("*file", "regexp", "[^/]*file"),
    ("a*/b", "regexp", "a[^/]*/b"), ("**", "suffix", None), ("**/**", "regexp", "(.*/)?.*"),
    ("dir/**", "prefix", None), ("**/dir", "suffix", None), ("**/dir2/*", "regexp", "(.*/)?dir2/[^/]*"),
    ("**/dir2/**", "regexp", "(.*/)?dir2/.*"), ("**file", "suffix", None),
    ("**/file*txt", "regexp", "(.*/)?file[^/]*txt"), ("**/**/*.txt", "regexp", "(.*/)?(.*/)?[^/]*\\.txt"),
    ("a[b-d]e", "regexp", "a[b-d]e"), (".*", "regexp", "\\.[^/]*"), ("abc.def", "exact", None),
    ("abc?def", "regexp", "abc[^/]def"), ("**/foo/bar", "suffix", None), ("a(b)c/def", "exact", None),
    ("a.|)$(}+{bc", "exact", None), ("dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl", "exact", None),
])
def test_compiled_kind_and_regexp(pattern, kind, regex):
    p = Matcher([pattern]).patterns[0]
    assert ["exact", "prefix", "suffix", "regexp"][p.kind] == kind
    assert (p.regex.pattern if p.regex else None) == regex


def test_exclusions_flag_and_cleaning():
    m = Matcher(["docs", "  !docs/README.md  ", "", "dir/"])
    assert m.exclusions
    assert [repr(p) for p in m.patterns] == ["docs", "!docs/README.md", "dir"]
    assert not Matcher(["docs"]).exclusions


def test_must_walk_needs_an_exception_starting_with_the_directory():
    m = Matcher(["node_modules", "!node_modules/p/keep.txt", "!*/x"])
    assert m.must_walk("node_modules") and m.must_walk("node_modules/p")
    assert not m.must_walk("node")          # a plain prefix of the name is not enough
    assert not m.must_walk("other")         # "!*/x" names no directory literally
    assert not Matcher(["a"]).must_walk("a")


def test_deprecated_matches_checks_one_parent_only():
    # "a/b" matches a/b/c through the parent at the pattern's own depth
    assert Matcher(["a/b"]).matches_one_parent("a/b/c/d")
    # "**/b" has two parts: only the parent x/y is tried, so x/y/b/c is missed where the full check finds it
    assert Matcher(["**/b"]).excluded("x/y/b/c") and not Matcher(["**/b"]).matches_one_parent("x/y/b/c")


# ---------------------------------------------------------------- the Dockerfile and .dockerignore are always sent

@pytest.mark.parametrize("patterns, dockerfile, stdin, added", [
    ([], "Dockerfile", False, []),
    (["*"], "Dockerfile", False, ["!.dockerignore", "!Dockerfile"]),
    ([".dockerignore", "Dockerfile"], "Dockerfile", False, ["!.dockerignore", "!Dockerfile"]),
    (["sub"], "sub/Dockerfile", False, ["!sub/Dockerfile"]),
    (["*"], "-", True, ["!.dockerignore"]),
    (["Dockerfile"], "Dockerfile", True, []),
    (["["], "Dockerfile", False, []),  # a bad pattern: the error comes later, from the walk
])
def test_keep_build_files(patterns, dockerfile, stdin, added):
    assert keep_build_files(patterns, dockerfile, stdin) == patterns + added


# ---------------------------------------------------------------- the walk, against docker CLI 28's tars

TREE = ["Dockerfile", "a.txt", "b.log", "docs/README.md", "docs/x.md", "docs/sub/y.md", "src/main.go",
        "src/vendor/lib.go", "src/vendor/keep/k.go", "logs/1.log", "logs/2.log", "logs/keep/3.log",
        "node_modules/p/index.js", "node_modules/p/keep.txt", ".git/HEAD", "dir/file", "dir/dir2/file",
        "foo/bar/baz", "x/foo/bar", ".hidden", "sub/Dockerfile", "a(b)c/def", "tmp/a", "tmp/b/c"]
ALL = ['.dockerignore', '.git', '.git/HEAD', '.hidden', 'Dockerfile', 'a(b)c', 'a(b)c/def', 'a.txt', 'b.log', 'dir',
       'dir/dir2', 'dir/dir2/file', 'dir/file', 'docs', 'docs/README.md', 'docs/sub', 'docs/sub/y.md', 'docs/x.md',
       'foo', 'foo/bar', 'foo/bar/baz', 'logs', 'logs/1.log', 'logs/2.log', 'logs/keep', 'logs/keep/3.log',
       'node_modules', 'node_modules/p', 'node_modules/p/index.js', 'node_modules/p/keep.txt', 'src', 'src/main.go',
       'src/vendor', 'src/vendor/keep', 'src/vendor/keep/k.go', 'src/vendor/lib.go', 'sub', 'sub/Dockerfile', 'tmp',
       'tmp/a', 'tmp/b', 'tmp/b/c', 'x', 'x/foo', 'x/foo/bar']
# (.dockerignore lines, what docker CLI 28 left out of the tar) or (lines, None, what it kept)
RECORDED = [
    (["*.log", "!logs/keep/3.log"], ["b.log"]),
    (["docs", "!docs/README.md"], ["docs", "docs/sub", "docs/sub/y.md", "docs/x.md"]),
    (["docs/*", "!docs/README.md"], ["docs/sub", "docs/sub/y.md", "docs/x.md"]),
    (["**/*.go", "!src/main.go"], ["src/vendor/keep/k.go", "src/vendor/lib.go"]),
    (["src/vendor", "!src/vendor/keep"], ["src/vendor", "src/vendor/lib.go"]),
    (["node_modules", "!node_modules/p/keep.txt"], ["node_modules", "node_modules/p", "node_modules/p/index.js"]),
    (["**", "!src", "src/vendor"], None, [".dockerignore", "Dockerfile", "src", "src/main.go"]),
    (["*", "!Dockerfile", "!docs/README.md"], None, [".dockerignore", "Dockerfile", "docs/README.md"]),
    (["**/bar"], ["foo/bar", "foo/bar/baz", "x/foo/bar"]),
    (["foo/**"], ["foo/bar", "foo/bar/baz"]),
    (["**/foo/bar"], ["foo/bar", "foo/bar/baz", "x/foo/bar"]),
    (["dir/**", "!dir/dir2"], ["dir/file"]),
    ([".*", "!.git/HEAD"], [".git", ".hidden"]),
    (["*/keep"], ["logs/keep", "logs/keep/3.log"]),
    (["!docs", "docs"], ["docs", "docs/README.md", "docs/sub", "docs/sub/y.md", "docs/x.md"]),
    (["tmp", "!tmp/b/c"], ["tmp", "tmp/a", "tmp/b"]),
    (["tmp/", "!tmp/b"], ["tmp", "tmp/a"]),
    (["Dockerfile", ".dockerignore", "sub"], ["sub", "sub/Dockerfile"]),
    (["**", "!**/keep"], None, [".dockerignore", "Dockerfile"]),
    (["a(b)c", "?.txt"], ["a(b)c", "a(b)c/def", "a.txt"]),
    (["[a-d].txt", "logs/[12].log"], ["a.txt", "logs/1.log", "logs/2.log"]),
    (["*/*/*", "!*/*/keep"], ["dir/dir2/file", "docs/sub/y.md", "foo/bar/baz", "logs/keep/3.log",
                              "node_modules/p/index.js", "node_modules/p/keep.txt", "src/vendor/lib.go", "tmp/b/c",
                              "x/foo/bar"]),
    (["/docs/../src", "!/src/main.go"], ["src", "src/vendor", "src/vendor/keep", "src/vendor/keep/k.go",
                                         "src/vendor/lib.go"]),
    (["**/*.md", "!docs"], ["docs/README.md", "docs/sub/y.md", "docs/x.md"]),
]


def _tree(root, lines):
    for f in TREE:
        path = os.path.join(root, f)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w") as fh:
            fh.write(f)
    with open(os.path.join(root, ".dockerignore"), "w") as fh:
        fh.write("\n".join(lines) + "\n")


@pytest.mark.parametrize("case", RECORDED, ids=[" ".join(c[0]) for c in RECORDED])
def test_context_files_match_docker(tmp_path, case):
    lines, absent = case[0], case[1]
    expected = case[2] if absent is None else [p for p in ALL if p not in absent]
    _tree(str(tmp_path), lines)
    patterns = keep_build_files(read_patterns("\n".join(lines)), "Dockerfile")
    assert list(context_files(str(tmp_path), patterns)) == expected


def test_walk_order_is_by_bytes_depth_first_and_symlinks_are_not_followed(tmp_path):
    for d in ("B", "a", "a/z", "b"):
        os.makedirs(tmp_path / d, exist_ok=True)
    (tmp_path / "a" / "z" / "f").write_text("f")
    (tmp_path / "a.txt").write_text("x")
    os.symlink(str(tmp_path / "a"), tmp_path / "link")
    assert list(context_files(str(tmp_path), [])) == ["B", "a", "a/z", "a/z/f", "a.txt", "b", "link"]


def test_unreadable_directory_goes_to_onerror(tmp_path, monkeypatch):
    os.makedirs(tmp_path / "locked")
    (tmp_path / "locked" / "f").write_text("f")
    (tmp_path / "z").write_text("z")
    real = ignore._sorted_entries

    def entries(path):
        if path.endswith("locked"):
            raise PermissionError(13, "Permission denied", path)
        return real(path)
    monkeypatch.setattr(ignore, "_sorted_entries", entries)
    seen = []
    assert list(context_files(str(tmp_path), [], onerror=lambda p, e: seen.append(p))) == ["locked", "z"]
    assert seen == [str(tmp_path / "locked")]


def test_excluded_directory_without_exception_is_not_walked(tmp_path, monkeypatch):
    os.makedirs(tmp_path / "big" / "deep")
    opened = []
    real = ignore._sorted_entries
    monkeypatch.setattr(ignore, "_sorted_entries", lambda p: opened.append(p) or real(p))
    assert list(context_files(str(tmp_path), ["big"])) == []
    assert opened == [str(tmp_path)]


# ---------------------------------------------------------------- which ignore file

def test_dockerfile_specific_ignore_file_wins(tmp_path):
    root = str(tmp_path)
    assert ignore_file_for(root, None) is None
    (tmp_path / ".dockerignore").write_text("x")
    assert ignore_file_for(root, None) == os.path.join(root, ".dockerignore")
    (tmp_path / "Dockerfile").write_text("FROM scratch")
    (tmp_path / "Dockerfile.dockerignore").write_text("y")
    assert ignore_file_for(root, None) == os.path.join(root, "Dockerfile.dockerignore")
    assert ignore_file_for(root, "Dockerfile") == os.path.join(root, "Dockerfile.dockerignore")
    # from stdin: only .dockerignore
    assert ignore_file_for(root, "-") == os.path.join(root, ".dockerignore")
    # -f docker/app.Dockerfile: the ignore file next to it, else .dockerignore
    os.makedirs(tmp_path / "docker")
    assert ignore_file_for(root, "docker/app.Dockerfile") == os.path.join(root, ".dockerignore")
    (tmp_path / "docker" / "app.Dockerfile.dockerignore").write_text("z")
    assert ignore_file_for(root, "docker/app.Dockerfile") == os.path.join(root, "docker/app.Dockerfile.dockerignore")
    assert ignore_file_for(root, str(tmp_path / "docker" / "app.Dockerfile")) == \
        str(tmp_path / "docker" / "app.Dockerfile.dockerignore")


def test_lowercase_dockerfile_is_the_default_only_when_alone(tmp_path):
    root = str(tmp_path)
    (tmp_path / "dockerfile").write_text("FROM scratch")
    (tmp_path / "dockerfile.dockerignore").write_text("a")
    assert ignore.default_dockerfile(root) == "dockerfile"
    assert ignore_file_for(root, None) == os.path.join(root, "dockerfile.dockerignore")
    (tmp_path / "Dockerfile").write_text("FROM scratch")
    assert ignore.default_dockerfile(root) == "Dockerfile"
    assert ignore_file_for(root, None) is None


def test_read_ignore_file(tmp_path):
    assert ignore.read_ignore_file(None) == []
    (tmp_path / "i").write_bytes(b"\xef\xbb\xbf*.log\n!keep.log\n")
    assert ignore.read_ignore_file(str(tmp_path / "i")) == ["*.log", "!keep.log"]
