"""The ``gate`` console script: the composition root of every command.

The pure package's commands (``check``, ``policy``) come from :mod:`gate.cli`;
the service's live here, each in its own module that is imported only when its
command runs, so ``gate check`` and ``gate hook`` start without loading the web
stack.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from gate import cli

#: Subcommands that live with the service: name -> (module with register(), help).
COMMANDS = {
    "serve": ("webhooks.commands.serve", "run the webhook receiver (and workers)"),
    "worker": ("webhooks.commands.serve", "run workers only"),
    "verify": ("webhooks.commands.verify", "verify a signed decision record"),
    "keygen": ("webhooks.commands.keygen", "create or rotate the signing key"),
    "audit": ("webhooks.commands.audit", "query or verify the audit log"),
    "trace": ("webhooks.commands.trace", "incident timeline from the audit log, verified"),
    "revert": ("webhooks.commands.revert", "open the revert PR of a merged PR, as the operator"),
    "redeliver": ("webhooks.commands.redeliver", "redeliver failed webhook deliveries"),
    "setup": ("webhooks.commands.setup", "register the GitHub App from its manifest"),
    "doctor": ("webhooks.commands.doctor", "check an installation and branch protection"),
    "bench": ("benchmarks.__main__", "run every benchmark and print ratios (from a checkout)"),
    "hook": ("webhooks.commands.hook", "judge an agent's tool call before it runs"),
    "agent-token": ("webhooks.commands.hook", "issue or revoke agents' audit tokens"),
}


def build_parser(argv: Sequence[str]) -> argparse.ArgumentParser:
    parser, sub = cli.new_parser()
    cli.register(sub)
    wanted = next((a for a in argv if not a.startswith("-")), None)
    loaded = COMMANDS[wanted][0] if wanted in COMMANDS else None
    for name, (module_name, help_text) in COMMANDS.items():
        if module_name != loaded:
            sub.add_parser(name, help=help_text, add_help=False)
    if loaded is not None:
        try:
            module = importlib.import_module(loaded)
        except ModuleNotFoundError as error:
            if not (error.name and loaded.startswith(error.name)):
                raise
            raise cli.UsageError(
                f"'{wanted}' is not part of this installation ({loaded})"
            ) from None
        module.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    try:
        parser = build_parser(args)
    except cli.UsageError as error:
        print(f"gate: error: {error}", file=sys.stderr)
        return cli.EXIT_USAGE
    return cli.run(parser, args)


if __name__ == "__main__":
    sys.exit(main())
