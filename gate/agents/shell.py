"""What a shell command plainly does: files it reads and writes, packages it adds,
safeguards it bypasses.

This is not a shell interpreter and does not try to be one: a determined agent can
hide a read behind variables or scripts. It catches what commands say on their face,
the way a reviewer reading the command would (``cat .env``, ``npm install left-pad``,
``git commit --no-verify``, ``echo x > .claude/settings.json``). The command is split
with :mod:`shlex` (POSIX rules) into simple commands at ``&&``, ``||``, ``;``, ``|``,
``&``, newlines, parentheses and ``$(...)``/backticks; ``VAR=value`` prefixes and
wrappers such as ``sudo``, ``env`` or ``time`` are skipped, and ``bash -c '...'`` and
``eval`` are analysed recursively. A command that does not tokenize is reported as
such, so the hook fails closed on it.
"""

from __future__ import annotations

import shlex
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

#: Commands whose operands are files they read (and print, copy or send elsewhere).
READERS = frozenset(
    {
        "cat", "tac", "less", "more", "head", "tail", "nl", "bat", "batcat", "view",
        "vi", "vim", "nvim", "nano", "emacs", "source", ".", "cp", "mv", "scp", "rsync",
        "base64", "xxd", "od", "hexdump", "strings", "grep", "egrep", "fgrep", "rg", "ag",
        "awk", "gawk", "sed", "sort", "uniq", "cut", "diff", "cmp", "jq", "yq", "tar",
        "zip", "gzip", "openssl", "gpg", "curl", "wget", "nc", "xargs", "paste", "tr",
        "column", "fold", "wc", "md5sum", "sha1sum", "sha256sum", "file", "python",
        "python3", "node", "ruby", "perl", "php", "docker", "install", "dd",
    }
)  # fmt: skip
#: Commands whose last operand (or every operand) is a file they write.
_WRITE_LAST = frozenset({"cp", "mv", "ln", "install", "rsync", "scp"})
_WRITE_ALL = frozenset({"tee", "rm", "truncate", "touch", "chmod", "chown", "unlink", "shred"})
_WRAPPERS = frozenset(
    {"sudo", "env", "command", "exec", "time", "nohup", "nice", "builtin", "doas", "stdbuf"}
)
_SHELLS = frozenset({"sh", "bash", "zsh", "dash", "ksh", "fish"})
_SEPARATORS = frozenset({"&&", "||", ";", "|", "&", "|&", ";;", "(", ")", "\n", "$"})
_REDIRECT_OUT = frozenset({">", ">>", ">|", "&>", "&>>", ">&"})
_MAX_DEPTH = 4


@dataclass(frozen=True, slots=True)
class Packages:
    """``manager`` is about to add ``names`` (or install from a new ``source``)."""

    manager: str
    names: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class ShellFacts:
    reads: tuple[str, ...] = ()
    writes: tuple[str, ...] = ()
    packages: tuple[Packages, ...] = ()
    #: Each bypass of a safeguard, described (``git commit --no-verify``).
    bypasses: tuple[str, ...] = ()
    #: Force pushes whose target branch the command does not name.
    unnamed_force_pushes: int = 0
    #: Why the command could not be analysed, if it could not.
    unparsed: str | None = None


@dataclass
class _Collect:
    reads: list[str] = field(default_factory=list)
    writes: list[str] = field(default_factory=list)
    packages: list[Packages] = field(default_factory=list)
    bypasses: list[str] = field(default_factory=list)
    unnamed: int = 0
    unparsed: str | None = None


def analyse(command: str, *, base_branches: frozenset[str]) -> ShellFacts:
    """The facts of ``command``; ``base_branches`` are the branches force-pushes may not hit."""
    found = _Collect()
    _analyse(command, found, base_branches=base_branches, depth=0)
    return ShellFacts(
        reads=tuple(dict.fromkeys(found.reads)),
        writes=tuple(dict.fromkeys(found.writes)),
        packages=tuple(found.packages),
        bypasses=tuple(dict.fromkeys(found.bypasses)),
        unnamed_force_pushes=found.unnamed,
        unparsed=found.unparsed,
    )


def split(command: str) -> list[list[str]]:
    """Simple commands of ``command``, each a list of words with redirections kept."""
    lexer = shlex.shlex(command.replace("`", "\n"), posix=True, punctuation_chars=";&|()<>\n")
    lexer.whitespace = " \t\r"
    lexer.whitespace_split = True
    lexer.commenters = ""
    commands: list[list[str]] = [[]]
    for word in lexer:
        if word in _SEPARATORS or (word.startswith(("&", "|", ";")) and word.strip("&|;") == ""):
            if commands[-1]:
                commands.append([])
            continue
        commands[-1].append(word)
    return [words for words in commands if words]


def _analyse(command: str, found: _Collect, *, base_branches: frozenset[str], depth: int) -> None:
    if depth > _MAX_DEPTH:
        found.unparsed = "commands nested too deeply"
        return
    try:
        commands = split(command)
    except ValueError as error:
        found.unparsed = f"the command does not tokenize ({error})"
        return
    for words in commands:
        _simple(words, found, base_branches=base_branches, depth=depth)


def _operands(words: Sequence[str]) -> Iterator[str]:
    """Arguments that are not options (``--`` ends the options)."""
    options = True
    for word in words:
        if options and word == "--":
            options = False
        elif options and word.startswith("-") and word != "-":
            continue
        else:
            yield word


def _strip_redirections(words: list[str], found: _Collect) -> list[str]:
    kept: list[str] = []
    index = 0
    while index < len(words):
        word = words[index]
        target = words[index + 1] if index + 1 < len(words) else None
        if word in _REDIRECT_OUT or (word == ">" and target is not None):
            if target is not None and not (target.isdigit() or target in ("-", "&")):
                found.writes.append(target)
            index += 2
            continue
        if word.isdigit() and target is not None and target[:1] in "<>":
            index += 1  # a file descriptor number ("2" of "2>")
            continue
        if word in ("<&", ">&") or (word in ("<", "<<<", "<>") and target == "&"):
            index += 2
            continue
        if word in ("<", "<<<", "<>"):
            if target is not None and word != "<<<":
                found.reads.append(target)
            index += 2
            continue
        if word == "<<":  # a here-document's delimiter, not a file
            index += 2
            continue
        kept.append(word)
        index += 1
    return kept


def _simple(
    words: list[str], found: _Collect, *, base_branches: frozenset[str], depth: int
) -> None:
    words = _strip_redirections(words, found)
    while words and ("=" in words[0] and not words[0].startswith("=")):
        assignment = words.pop(0)
        name = assignment.split("=", 1)[0]
        if name in ("HUSKY", "SKIP", "PRE_COMMIT_ALLOW_NO_CONFIG") and words[:1] == ["git"]:
            found.bypasses.append(f"{assignment} disables git hooks")
    while words and words[0] in _WRAPPERS:
        words = words[1:]
        while words and (words[0].startswith("-") or "=" in words[0]):
            words = words[1:]
    if not words:
        return
    name = words[0].rsplit("/", 1)[-1]
    args = words[1:]
    if name in _SHELLS:
        flags = [i for i, a in enumerate(args) if a.startswith("-") and not a.startswith("--")]
        at = next((i for i in flags if "c" in args[i][1:]), None)
        if at is not None:
            script = args[at + 1] if at + 1 < len(args) else ""
            _analyse(script, found, base_branches=base_branches, depth=depth + 1)
            return
    if name == "eval":
        _analyse(" ".join(args), found, base_branches=base_branches, depth=depth + 1)
        return
    if name == "git":
        _git(args, found, base_branches=base_branches)
    _packages(name, args, found)
    operands = list(_operands(args))
    if name in READERS:
        sources = operands[:-1] if name in _WRITE_LAST and len(operands) > 1 else operands
        found.reads.extend(sources)
        found.reads.extend(a.split("=", 1)[1] for a in args if a.startswith("if="))
        found.reads.extend(a.lstrip("@") for a in args if a.startswith("@"))
    if name in _WRITE_LAST and len(operands) > 1:
        found.writes.append(operands[-1])
    if name in _WRITE_ALL:
        found.writes.extend(operands)
    if name == "dd":
        found.writes.extend(a.split("=", 1)[1] for a in args if a.startswith("of="))
    if name in ("sed", "perl") and any(
        a == "-i" or a.startswith(("-i", "--in-place")) for a in args
    ):
        found.writes.extend(operands[1:] if name == "sed" else operands)


# --- git ---------------------------------------------------------------------------------

_GIT_GLOBAL_WITH_VALUE = frozenset({"-C", "-c", "--git-dir", "--work-tree", "--namespace"})


def _git(args: list[str], found: _Collect, *, base_branches: frozenset[str]) -> None:
    index = 0
    while index < len(args) and args[index].startswith("-"):
        option = args[index]
        value = args[index + 1] if index + 1 < len(args) else ""
        if option == "-c" and value.lower().startswith("core.hookspath"):
            found.bypasses.append("git -c core.hooksPath=... replaces the repository's hooks")
        index += 2 if option in _GIT_GLOBAL_WITH_VALUE else 1
    if index >= len(args):
        return
    sub, rest = args[index], args[index + 1 :]
    if "--no-verify" in rest or (sub == "commit" and _short_flag(rest, "n")):
        found.bypasses.append(f"git {sub} --no-verify skips the repository's hooks")
    if sub == "config" and any(a.lower() == "core.hookspath" for a in rest):
        reading = any(a in ("--get", "--get-all", "--list", "-l") for a in rest)
        if not reading:
            found.bypasses.append("git config core.hooksPath replaces the repository's hooks")
    if sub == "push":
        _push(rest, found, base_branches=base_branches)


def _short_flag(args: Sequence[str], letter: str) -> bool:
    return any(
        a.startswith("-") and not a.startswith("--") and letter in a[1:] for a in _options(args)
    )


def _options(args: Sequence[str]) -> Iterator[str]:
    for arg in args:
        if arg == "--":
            return
        yield arg


def _push(args: list[str], found: _Collect, *, base_branches: frozenset[str]) -> None:
    force = any(
        a in ("--force", "--mirror") or a.startswith(("--force-with-lease", "--force-if-includes"))
        for a in _options(args)
    ) or _short_flag(args, "f")
    deleting = "--delete" in args or _short_flag(args, "d")
    operands = [a for a in _operands(args) if a not in ("--repo",)]
    refspecs = operands[1:]
    for spec in refspecs:
        plus = spec.startswith("+")
        target = spec.lstrip("+").rsplit(":", 1)[-1].removeprefix("refs/heads/")
        if target in base_branches and (force or plus or deleting or spec.startswith(":")):
            found.bypasses.append(f"git push {spec} rewrites or deletes the base branch {target}")
    if force and not refspecs:
        found.unnamed += 1


# --- package managers --------------------------------------------------------------------

_PIP_VALUE_OPTIONS = frozenset(
    {"-r", "--requirement", "-c", "--constraint", "-e", "--editable", "-t", "--target",
     "-i", "--index-url", "--extra-index-url", "-f", "--find-links", "--prefix", "--root",
     "--python", "-p", "--group", "--extra", "--optional", "-G", "--source", "--registry",
     "--tag", "--version", "--branch", "--rev", "--git", "--path", "--features", "-F"}
)  # fmt: skip
_SOURCES = frozenset({"-i", "--index-url", "--extra-index-url", "-f", "--find-links",
                      "--registry", "--source", "--git"})  # fmt: skip
#: (program, subcommand) pairs that add a dependency.
_ADDERS = {
    ("pip", "install"), ("pip3", "install"), ("uv", "add"), ("poetry", "add"),
    ("pdm", "add"), ("pipenv", "install"), ("npm", "install"), ("npm", "i"),
    ("npm", "add"), ("pnpm", "add"), ("pnpm", "install"), ("pnpm", "i"), ("yarn", "add"),
    ("bun", "add"), ("bun", "install"), ("cargo", "add"), ("cargo", "install"),
    ("go", "get"), ("go", "install"), ("gem", "install"), ("bundle", "add"),
    ("composer", "require"),
}  # fmt: skip


def _packages(name: str, args: list[str], found: _Collect) -> None:
    if name.startswith("python") and args[:2] == ["-m", "pip"]:
        name, args = "pip", args[2:]
    elif name == "uv" and args[:1] == ["pip"]:
        name, args = "pip", args[1:]
    if not args or (name, args[0]) not in _ADDERS:
        return
    names: list[str] = []
    rest = args[1:]
    index = 0
    while index < len(rest):
        word = rest[index]
        if word in _PIP_VALUE_OPTIONS and index + 1 < len(rest):
            value = rest[index + 1]
            if word in ("-r", "--requirement"):
                names.append(f"-r {value}")
            elif word in _SOURCES:
                names.append(f"{word} {value}")
            index += 2
            continue
        if word.startswith("-"):
            if word.split("=", 1)[0] in _SOURCES:
                names.append(word)
            index += 1
            continue
        # A local path (".", "./pkg", "../x") installs what is already in the tree.
        if not word.startswith((".", "/")):
            names.append(word)
        index += 1
    if names:
        found.packages.append(Packages(manager=f"{name} {args[0]}", names=tuple(names)))
