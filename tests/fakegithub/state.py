"""What the fake GitHub knows, and the helpers tests use to set it up.

:class:`GitHubState` is the test-facing half of :class:`~tests.fakegithub.server.FakeGitHub`
(the server half is in ``server.py``). Every mutation happens under
``self.lock`` because server threads read the same objects concurrently.
"""

from __future__ import annotations

import copy
import random
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from tests.fakegithub import auth
from tests.fakegithub.gitdata import blob_sha, fake_sha
from tests.fakegithub.models import (
    App,
    Call,
    CheckRun,
    Delivery,
    Installation,
    Issue,
    IssueComment,
    PRCommit,
    PRFile,
    Pull,
    Repo,
    Review,
    Ruleset,
    Team,
    User,
    Violation,
)
from tests.fakegithub.oauth import OAuthState

#: The App every fresh fake knows, signed by :func:`auth.key_pair`.
DEFAULT_APP_ID = 1
DEFAULT_APP_SLUG = "merge-gate"


def iso(ts: float | None = None) -> str:
    """GitHub's timestamp format: second precision, ``Z``."""
    moment = datetime.fromtimestamp(time.time() if ts is None else ts, tz=UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class Fault:
    status: int
    retry_after: int | None = None
    #: A timeout: the request acts, its answer is dropped (see :class:`Chaos`).
    drop: bool = False


#: What :meth:`GitHubState.chaos` chooses among, with equal odds.
CHAOS_KINDS = ("502", "503", "secondary_rate_limit", "timeout")


@dataclass
class Chaos:
    """A probabilistic fault mode: each valid request fails with probability ``rate``.

    A "timeout" lets the endpoint act (a check run is created, say), holds the
    answer ``hold`` seconds and then closes the connection without one: the
    client cannot tell whether its write happened, the hardest case for a retry.
    """

    rate: float
    rng: random.Random
    hold: float = 0.2
    retry_after: int = 1
    #: Operations (``"POST /app/installations/{installation_id}/access_tokens"``) never faulted.
    exempt: frozenset[str] = frozenset()
    kinds: tuple[str, ...] = CHAOS_KINDS
    injected: Counter[str] = field(default_factory=Counter)


class _Counter:
    """Ids that look distinct per kind, so a mixed-up id fails loudly."""

    def __init__(self, start: int) -> None:
        self._next = start

    def __call__(self) -> int:
        self._next += 1
        return self._next


class GitHubState:
    """The fake's world. Public attributes below are part of the test API."""

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.reset()

    # ------------------------------------------------------------------ reset

    def reset(self) -> None:
        """Forget everything tests set or the server recorded; keep the socket."""
        with self.lock:
            # Behaviour knobs.
            #: Seconds slept per request, outside the lock (so parallel calls overlap).
            self.latency = 0.0
            #: Lifetime of installation tokens minted by ``POST .../access_tokens``.
            self.token_lifetime = 3600.0
            #: Primary rate limit ("core"): budget, what is left, reset epoch.
            self.rate_limit = 5000
            self.rate_limit_remaining = 5000
            self.rate_limit_reset = int(time.time()) + 3600
            #: GraphQL's own budget, in points (``x-ratelimit-resource: graphql``).
            self.graphql_rate_limit = 5000
            self.graphql_rate_limit_remaining = 5000
            #: Set by :meth:`fail_graphql`: every ``POST /graphql`` fails so, until cleared.
            self.graphql_failure: Fault | str | None = None
            #: Team slugs (``"slug"`` or ``"org/slug"``) that cannot be requested as reviewers.
            self.teams_without_access: set[str] = set()
            #: Also check each 2xx answer against the description (~1-7 ms a call);
            #: a mismatch is a violation of kind "response", i.e. a bug in the fake.
            self.validate_responses = True
            #: Status the fake's redeliveries get (``POST .../attempts``).
            self.redelivery_status_code = 200

            # Records.
            self.calls: list[Call] = []
            self.violations: list[Violation] = []
            #: Delivery ids for which ``POST /app/hook/deliveries/{id}/attempts`` was called.
            self.redelivery_requests: list[int] = []

            # World.
            self.apps: dict[int, App] = {}
            self.installations: dict[int, Installation] = {}
            self.repos: dict[str, Repo] = {}
            self.pulls: dict[tuple[str, int], Pull] = {}
            #: Whether ``GET /commits/{sha}/pulls`` names pull requests from forks
            #: (GitHub's association of a fork's commits is not to be relied on).
            self.associate_forks = True
            #: (repo, login) -> role; unset: write for members of the owner's teams.
            self.permissions: dict[tuple[str, str], str] = {}
            self.reviews: list[Review] = []
            self.runs: dict[int, CheckRun] = {}
            self.teams: dict[tuple[str, str], Team] = {}
            self.deliveries: list[Delivery] = []
            self.manifest_codes: dict[str, dict[str, Any]] = {}
            self.compares: dict[tuple[str, str, str], list[PRCommit]] = {}
            self.compare_files: dict[tuple[str, str, str], list[PRFile]] = {}
            self.users: dict[str, User] = {}
            self.revoked_tokens: set[str] = set()
            self.faults: list[Fault] = []
            self.comments: list[IssueComment] = []
            #: Personal access tokens: token -> the user's login.
            self.user_tokens: dict[str, str] = {}
            self.issues: list[Issue] = []
            #: The OAuth web flow (``tests/fakegithub/oauth.py``): clients, sign-in, tokens.
            self.oauth = OAuthState()
            #: The probabilistic fault mode (:meth:`chaos`); off by default.
            self.chaos_mode: Chaos | None = None

            self._repo_ids = _Counter(100_000)
            self._pull_ids = _Counter(200_000)
            self._review_ids = _Counter(300_000)
            self._run_ids = _Counter(400_000)
            self._user_ids = _Counter(500_000)
            self._team_ids = _Counter(600)
            self._installation_ids = _Counter(1_000)
            self._ruleset_ids = _Counter(10)
            self._delivery_ids = _Counter(90_000_000_000)
            self._comment_ids = _Counter(700_000)
            self._issue_ids = _Counter(800_000)

            self.register_app(DEFAULT_APP_ID)

    # ------------------------------------------------------------------- apps

    @property
    def app_private_key_pem(self) -> str:
        """PKCS#1 PEM private key of the default App (shared by all fakes in the process)."""
        return auth.key_pair().private_pem

    @property
    def app_public_key_pem(self) -> str:
        return auth.key_pair().public_pem

    @property
    def app_id(self) -> int:
        """Id of the App registered by default (``1``)."""
        return DEFAULT_APP_ID

    def register_app(
        self,
        app_id: int,
        public_key_pem: str | None = None,
        *,
        slug: str | None = None,
        name: str | None = None,
        client_id: str | None = None,
        owner: str = "org",
    ) -> App:
        """Accept JWTs issued (``iss``) by ``app_id`` or ``client_id``, signed by the key."""
        with self.lock:
            slug = slug or (DEFAULT_APP_SLUG if app_id == DEFAULT_APP_ID else f"app-{app_id}")
            app = App(
                id=app_id,
                slug=slug,
                name=name or slug,
                client_id=client_id or f"Iv1.{fake_sha('client', app_id)[:16]}",
                public_key_pem=public_key_pem or auth.key_pair().public_pem,
                owner=owner,
                permissions={
                    "checks": "write",
                    "contents": "read",
                    "metadata": "read",
                    "members": "read",
                    "pull_requests": "write",
                },
                events=["check_run", "check_suite", "pull_request", "pull_request_review"],
            )
            self.apps[app_id] = app
            return app

    def oauth_client(self, callback_url: str, app_id: int | None = None) -> tuple[str, str]:
        """Register ``callback_url`` as the App's OAuth callback; its (client id, secret)."""
        with self.lock:
            app = self.apps[app_id or DEFAULT_APP_ID]
            secret = fake_sha("client-secret", app.id)
            self.oauth.register(app.client_id, secret, callback_url)
            return app.client_id, secret

    def app_jwt(self, app_id: int | None = None, *, lifetime_s: int = 540) -> str:
        """A JWT for ``app_id`` signed with the fake's key (valid if the App uses it)."""
        return auth.make_jwt(
            app_id or DEFAULT_APP_ID, auth.key_pair().private_pem, lifetime_s=lifetime_s
        )

    def add_installation(
        self,
        installation_id: int,
        account: str,
        *,
        app_id: int | None = None,
        account_type: str = "Organization",
        repositories: Sequence[str] | None = None,
        permissions: Mapping[str, str] | None = None,
    ) -> Installation:
        """An installation of the App on ``account`` (all its repos unless ``repositories``)."""
        with self.lock:
            app = self.apps[app_id or DEFAULT_APP_ID]
            inst = Installation(
                id=installation_id,
                app_id=app.id,
                account=account,
                account_type=account_type,
                repositories=list(repositories) if repositories is not None else None,
                permissions=dict(permissions or app.permissions),
                events=list(app.events),
            )
            self.installations[installation_id] = inst
            self.user(account, account_type)
            return inst

    def installation_for(self, repo: str) -> Installation | None:
        with self.lock:
            for inst in self.installations.values():
                if inst.covers(repo):
                    return inst
            return None

    def installation_id_for(self, repo: str) -> int:
        inst = self.installation_for(repo)
        if inst is None:
            raise KeyError(f"no installation covers {repo}")
        return inst.id

    def issue_token(
        self, installation_id: int | None = None, *, lifetime_s: float | None = None
    ) -> str:
        """Mint an installation token directly, as if ``POST .../access_tokens`` had."""
        with self.lock:
            if installation_id is None:
                installation_id = next(iter(self.installations))
            if installation_id not in self.installations:
                raise KeyError(f"unknown installation {installation_id}")
            lifetime = self.token_lifetime if lifetime_s is None else lifetime_s
        return auth.issue_token(installation_id, lifetime).token

    def expire_tokens(self) -> None:
        """Make every installation token issued so far answer 401 on this fake."""
        with self.lock:
            self.revoked_tokens.update(auth.all_tokens())

    def add_manifest_code(
        self,
        code: str,
        *,
        app_id: int = 2,
        slug: str = DEFAULT_APP_SLUG,
        name: str | None = None,
        owner: str = "org",
        webhook_secret: str = "whsec-from-manifest",  # noqa: S107 (a test value)
    ) -> dict[str, Any]:
        """Let ``POST /app-manifests/{code}/conversions`` succeed once for ``code``.

        Returns what the conversion will answer; its ``pem`` is the fake's key,
        and the App is registered at conversion time so its JWTs work.
        """
        with self.lock:
            self.manifest_codes[code] = {
                "id": app_id,
                "slug": slug,
                "name": name or slug,
                "owner": owner,
                "webhook_secret": webhook_secret,
                "client_id": f"Iv1.{fake_sha('client', app_id)[:16]}",
                "client_secret": fake_sha("secret", app_id),
                "pem": auth.key_pair().private_pem,
            }
            return dict(self.manifest_codes[code])

    # ------------------------------------------------------------------ users

    def user(self, login: str, type_: str = "User") -> User:
        """The user record for ``login`` (created on first sight, type kept from then)."""
        with self.lock:
            key = login.lower()
            if key not in self.users:
                self.users[key] = User(login, self._user_ids(), type_)
            elif type_ != "User":
                self.users[key].type = type_
            return self.users[key]

    # ------------------------------------------------------------- repos/git

    def add_repo(
        self,
        full_name: str,
        *,
        default_branch: str = "main",
        installation_id: int | None = None,
        private: bool = True,
        installed: bool = True,
    ) -> Repo:
        """A repository; unless ``installed=False`` the App is installed on it.

        With no ``installation_id`` it joins the installation on its owner, and
        one is created (ids from 1001) if there is none.
        """
        with self.lock:
            if full_name.lower() in self.repos:
                raise ValueError(f"{full_name} was already added")
            repo = Repo(full_name, self._repo_ids(), default_branch, private)
            repo.branches[default_branch] = fake_sha(full_name, default_branch)
            self.repos[full_name.lower()] = repo
            self.user(repo.owner, "Organization")
            if installed:
                if installation_id is not None:
                    inst = self.installations.get(installation_id) or self.add_installation(
                        installation_id, repo.owner, repositories=[]
                    )
                    if inst.repositories is not None and not inst.covers(full_name):
                        inst.repositories.append(full_name)
                elif self.installation_for(full_name) is None:
                    self.add_installation(self._installation_ids(), repo.owner)
            return repo

    def repo(self, full_name: str) -> Repo:
        with self.lock:
            try:
                return self.repos[full_name.lower()]
            except KeyError:
                raise KeyError(f"unknown repo {full_name}; call add_repo first") from None

    def set_branch(self, repo: str, branch: str, sha: str) -> None:
        with self.lock:
            self.repo(repo).branches[branch] = sha

    def set_file(self, repo: str, ref_or_sha: str, path: str, text: str | bytes) -> str:
        """Put ``path`` at a branch or commit; returns its git blob sha."""
        data = text.encode() if isinstance(text, str) else text
        sha = blob_sha(data)
        with self.lock:
            r = self.repo(repo)
            r.trees.setdefault(_strip_ref(ref_or_sha), {})[path.strip("/")] = data
            r.blobs[sha] = data
        return sha

    def tree_keys(self, repo: Repo, ref: str) -> list[str]:
        """Where files for ``ref`` may have been put: the ref itself, the sha a
        branch points at, and the branches that point at a sha."""
        ref = _strip_ref(ref)
        keys = [ref]
        if ref in repo.branches:
            keys.append(repo.branches[ref])
        keys.extend(b for b, sha in repo.branches.items() if sha == ref)
        return keys

    def read_file(self, repo: str, ref: str, path: str) -> bytes | None:
        with self.lock:
            r = self.repo(repo)
            for key in self.tree_keys(r, ref):
                data = r.trees.get(key, {}).get(path.strip("/"))
                if data is not None:
                    return data
            return None

    # ----------------------------------------------------------------- pulls

    def add_pull(
        self,
        repo: str,
        number: int,
        *,
        author: str = "agent[bot]",
        author_type: str = "Bot",
        head_sha: str | None = None,
        head_ref: str | None = None,
        head_repo: str | None = None,
        base_ref: str | None = None,
        base_sha: str | None = None,
        files: Iterable[PRFile | Mapping[str, Any] | str] = (),
        commits: Iterable[PRCommit | Mapping[str, Any]] | None = None,
        draft: bool = False,
        labels: Iterable[str] = (),
        title: str | None = None,
        body: str | None = "",
        state: str = "open",
        author_association: str = "CONTRIBUTOR",
        assignees: Iterable[str] = (),
    ) -> Pull:
        """An open pull request into ``repo``.

        ``head_repo`` names a fork (``"someone/repo"``); it is created, without
        the App, if unknown. ``commits`` default to one commit at ``head_sha``
        by ``author``. ``base_sha`` given moves ``base_ref`` there.
        """
        with self.lock:
            r = self.repo(repo)
            base_ref = base_ref or r.default_branch
            if base_sha is None:
                base_sha = r.branches.setdefault(base_ref, fake_sha(repo, base_ref))
            else:
                r.branches[base_ref] = base_sha
            head_sha = head_sha or fake_sha(repo, number, "head")
            head_ref = head_ref or f"agent/pr-{number}"
            head_repo = head_repo or r.full_name
            if head_repo.lower() not in self.repos:
                fork = self.add_repo(head_repo, default_branch=r.default_branch, installed=False)
                fork.fork = True
                fork.private = r.private
            self.repo(head_repo).branches[head_ref] = head_sha
            self.user(author, author_type)
            pull = Pull(
                repo=r.full_name,
                number=number,
                id=self._pull_ids(),
                author=author,
                author_type=author_type,
                head_sha=head_sha,
                head_ref=head_ref,
                head_repo=self.repo(head_repo).full_name,
                base_ref=base_ref,
                base_sha=base_sha,
                files=[PRFile.coerce(f) for f in files],
                commits=(
                    [PRCommit.coerce(c) for c in commits]
                    if commits is not None
                    else [PRCommit(head_sha, title or f"Change {number}", author, author_type)]
                ),
                draft=draft,
                labels=list(labels),
                title=title or f"Change {number}",
                body=body,
                state=state,
                author_association=author_association,
                created_at=iso(),
                updated_at=iso(),
                assignees=list(assignees),
            )
            for login in pull.assignees:
                self.user(login)
            self.pulls[(r.full_name.lower(), number)] = pull
            return pull

    def pull(self, repo: str, number: int) -> Pull:
        with self.lock:
            try:
                return self.pulls[(repo.lower(), number)]
            except KeyError:
                raise KeyError(f"unknown pull {repo}#{number}") from None

    def push(
        self,
        repo: str,
        number: int,
        new_head_sha: str,
        *,
        files: Iterable[PRFile | Mapping[str, Any] | str] | None = None,
        commits: Iterable[PRCommit | Mapping[str, Any]] | None = None,
        message: str = "Update",
        author: str | None = None,
    ) -> Pull:
        """New commits on the PR's head: head moves, ``files`` (if given) replace the list.

        Without ``commits`` one commit ``new_head_sha`` by ``author`` (default:
        the PR's author) is appended.
        """
        with self.lock:
            pull = self.pull(repo, number)
            previous = pull.head_sha
            pull.head_sha = new_head_sha
            self.repo(pull.head_repo).branches[pull.head_ref] = new_head_sha
            if files is not None:
                pull.files = [PRFile.coerce(f) for f in files]
            if commits is not None:
                pull.commits.extend(PRCommit.coerce(c) for c in commits)
            else:
                login = author or pull.author
                kind = pull.author_type if login == pull.author else self.user(login).type
                pull.commits.append(
                    PRCommit(new_head_sha, message, login, kind, parents=[previous])
                )
            pull.updated_at = iso()
            return pull

    def merge(self, repo: str, number: int, *, by: str, merge_commit_sha: str) -> Pull:
        """The pull request merged by ``by`` as ``merge_commit_sha`` into its base."""
        with self.lock:
            pull = self.pull(repo, number)
            self.user(by)
            pull.state, pull.merged = "closed", True
            pull.merged_by, pull.merge_commit_sha = by, merge_commit_sha
            self.repo(pull.repo).branches[pull.base_ref] = merge_commit_sha
            pull.updated_at = iso()
            return pull

    def add_user_token(self, login: str) -> str:
        """A personal access token of ``login`` (what an operator's GITHUB_TOKEN is)."""
        with self.lock:
            self.user(login)
            token = "ghp_" + fake_sha("user-token", login, len(self.user_tokens))[:36]
            self.user_tokens[token] = login
            return token

    def add_comment(
        self, repo: str, number: int, *, user: str, body: str, user_type: str = "User"
    ) -> IssueComment:
        """A comment on issue or pull request ``number`` (the conversation, not a review)."""
        with self.lock:
            self.user(user, user_type)
            comment = IssueComment(
                id=self._comment_ids(),
                repo=self.repo(repo).full_name,
                number=number,
                user=user,
                user_type=user_type,
                body=body,
                created_at=iso(),
            )
            self.comments.append(comment)
            return comment

    def set_compare(
        self,
        repo: str,
        base: str,
        head: str,
        commits: Iterable[PRCommit | Mapping[str, Any] | str],
        files: Iterable[PRFile | Mapping[str, Any] | str] = (),
    ) -> None:
        """What ``GET /repos/{owner}/{repo}/compare/{base}...{head}`` lists as commits
        and files (a merge group's, say). Without this, a head that is some PR's head
        answers that PR's commits, and anything else is 404."""
        with self.lock:
            key = (self.repo(repo).full_name.lower(), base, head)
            self.compares[key] = [
                PRCommit(c) if isinstance(c, str) else PRCommit.coerce(c) for c in commits
            ]
            self.compare_files[key] = [PRFile.coerce(f) for f in files]

    def add_review(
        self,
        repo: str,
        number: int,
        *,
        user: str,
        user_type: str = "User",
        state: str = "APPROVED",
        commit_id: str | None = None,
        author_association: str = "MEMBER",
        body: str = "",
    ) -> int:
        """A submitted review (on the current head unless ``commit_id``); returns its id."""
        with self.lock:
            pull = self.pull(repo, number)
            self.user(user, user_type)
            review = Review(
                id=self._review_ids(),
                repo=pull.repo,
                number=number,
                user=user,
                user_type=user_type,
                state=state,
                commit_id=commit_id or pull.head_sha,
                body=body,
                author_association=author_association,
                submitted_at=None if state == "PENDING" else iso(),
            )
            self.reviews.append(review)
            return review.id

    def requested_reviewers(self, repo: str, number: int) -> tuple[list[str], list[str]]:
        """(user logins, team slugs) currently requested on the PR."""
        with self.lock:
            pull = self.pull(repo, number)
            return list(pull.requested_users), list(pull.requested_teams)

    # ---------------------------------------------------------------- checks

    def check_runs(self, repo: str, head_sha: str) -> list[CheckRun]:
        """Copies of every check run on ``head_sha``, oldest first."""
        with self.lock:
            return [
                copy.deepcopy(run)
                for run in self.runs.values()
                if run.repo.lower() == repo.lower() and run.head_sha == head_sha
            ]

    def add_check_run(
        self,
        repo: str,
        head_sha: str,
        name: str,
        *,
        app_id: int = 999,
        status: str = "completed",
        conclusion: str | None = "success",
    ) -> int:
        """A check run some other App (CI, say) left on a commit; returns its id."""
        with self.lock:
            run = CheckRun(
                id=self._run_ids(),
                repo=self.repo(repo).full_name,
                head_sha=head_sha,
                name=name,
                app_id=app_id,
                status=status,
                conclusion=conclusion,
                started_at=iso(),
                completed_at=iso() if status == "completed" else None,
            )
            self.runs[run.id] = run
            return run.id

    def next_check_run_id(self) -> int:
        return self._run_ids()

    def next_delivery_id(self) -> int:
        return self._delivery_ids()

    # ----------------------------------------------------------------- teams

    def set_permission(self, repo: str, login: str, role: str) -> None:
        """``login``'s role on ``repo``: admin, maintain, write, triage, read or none."""
        with self.lock:
            self.permissions[(repo.lower(), login.lower())] = role

    def permission_of(self, repo: str, login: str) -> str:
        with self.lock:
            role = self.permissions.get((repo.lower(), login.lower()))
            if role is not None:
                return role
            org = repo.split("/", 1)[0].lower()
            member = any(
                o == org and login.lower() in (m.lower() for m in team.members)
                for (o, _), team in self.teams.items()
            )
            return "write" if member else "read"

    def set_team(
        self,
        org: str,
        slug: str,
        members: Iterable[str],
        *,
        maintainers: Iterable[str] = (),
        name: str | None = None,
    ) -> Team:
        """Define (or replace) ``org``'s team ``slug``; maintainers are members too."""
        with self.lock:
            old = self.teams.get((org.lower(), slug.lower()))
            maint = list(maintainers)
            team = Team(
                org=org,
                slug=slug,
                id=old.id if old else self._team_ids(),
                name=name or slug,
                members=[m for m in members if m not in maint] + maint,
                maintainers=maint,
            )
            for login in team.members:
                self.user(login)
            self.teams[(org.lower(), slug.lower())] = team
            return team

    # ------------------------------------------------------ protection/rules

    def set_branch_protection(
        self, repo: str, branch: str, protection: Mapping[str, Any] | None
    ) -> None:
        """What ``GET .../branches/{branch}/protection`` answers (``None``: 404)."""
        with self.lock:
            r = self.repo(repo)
            if protection is None:
                r.protection.pop(branch, None)
            else:
                r.protection[branch] = copy.deepcopy(dict(protection))

    def protect_branch(
        self,
        repo: str,
        branch: str,
        *,
        required_checks: Sequence[str] = (),
        strict: bool = False,
        required_approvals: int | None = 1,
        require_code_owner_reviews: bool = False,
        dismiss_stale_reviews: bool = False,
        require_last_push_approval: bool = False,
        enforce_admins: bool = False,
    ) -> dict[str, Any]:
        """Classic branch protection in GitHub's response shape; returns it."""
        from tests.fakegithub import payloads  # payloads imports this module's types

        protection = payloads.branch_protection(
            required_checks=required_checks,
            strict=strict,
            required_approvals=required_approvals,
            require_code_owner_reviews=require_code_owner_reviews,
            dismiss_stale_reviews=dismiss_stale_reviews,
            require_last_push_approval=require_last_push_approval,
            enforce_admins=enforce_admins,
        )
        self.set_branch_protection(repo, branch, protection)
        return protection

    def add_ruleset(
        self,
        repo: str,
        name: str,
        rules: Iterable[Mapping[str, Any]],
        *,
        include: Sequence[str] = ("~DEFAULT_BRANCH",),
        exclude: Sequence[str] = (),
        enforcement: str = "active",
        target: str = "branch",
    ) -> int:
        """A repository ruleset; ``rules`` are GitHub rule objects
        (``{"type": "pull_request", "parameters": {...}}``). Returns its id."""
        with self.lock:
            ruleset = Ruleset(
                id=self._ruleset_ids(),
                name=name,
                rules=[copy.deepcopy(dict(rule)) for rule in rules],
                include=list(include),
                exclude=list(exclude),
                enforcement=enforcement,
                target=target,
            )
            self.repo(repo).rulesets.append(ruleset)
            return ruleset.id

    # ------------------------------------------------------------ deliveries

    def add_delivery(
        self,
        event: str,
        action: str | None = None,
        *,
        status_code: int = 200,
        guid: str | None = None,
        redelivery: bool = False,
        installation_id: int | None = None,
        repository_id: int | None = None,
        payload: Mapping[str, Any] | None = None,
        delivered_at: str | None = None,
    ) -> int:
        """A past delivery of the App's webhook; returns its id (newest listed first)."""
        with self.lock:
            delivery = Delivery(
                id=self._delivery_ids(),
                guid=guid or str(uuid.uuid4()),
                event=event,
                action=action,
                status_code=status_code,
                redelivery=redelivery,
                installation_id=installation_id,
                repository_id=repository_id,
                delivered_at=delivered_at or iso(),
                payload=dict(payload or {}),
            )
            self.deliveries.append(delivery)
            return delivery.id

    # ---------------------------------------------------------------- faults

    def fail_next(self, n: int = 1, status: int = 502) -> None:
        """The next ``n`` valid requests are answered ``status`` (a 5xx, say)."""
        with self.lock:
            self.faults.extend(Fault(status) for _ in range(n))

    def drop_next(self, n: int = 1) -> None:
        """The next ``n`` valid requests act, then their connection closes unanswered."""
        with self.lock:
            self.faults.extend(Fault(0, drop=True) for _ in range(n))

    def secondary_rate_limit_next(self, n: int = 1, retry_after: int = 1) -> None:
        """The next ``n`` valid requests hit GitHub's secondary rate limit (403 + retry-after)."""
        with self.lock:
            self.faults.extend(Fault(403, retry_after) for _ in range(n))

    def fail_graphql(self, failure: int | str | None = 502) -> None:
        """Every ``POST /graphql`` fails until ``fail_graphql(None)``.

        An int is an HTTP status (403: GitHub's secondary rate limit); a string is
        answered 200 with that message in ``errors``, as GitHub reports a query it
        could not run.
        """
        with self.lock:
            if failure is None or isinstance(failure, str):
                self.graphql_failure = failure
            else:
                self.graphql_failure = Fault(failure, 1 if failure == 403 else None)

    def chaos(
        self,
        *,
        rate: float = 0.2,
        seed: int = 0,
        hold: float = 0.2,
        retry_after: int = 1,
        exempt: Iterable[str] = (),
        kinds: Sequence[str] = CHAOS_KINDS,
    ) -> Chaos:
        """Fail each valid request with probability ``rate`` (reproducibly, by ``seed``).

        The fault is one of ``kinds``: a 502, a 503, GitHub's secondary rate limit
        (403 + ``retry-after``) or a "timeout" (see :class:`Chaos`). Faults queued
        with :meth:`fail_next` come first. :meth:`chaos_off` ends the mode.
        """
        if not 0.0 <= rate <= 1.0:
            raise ValueError("rate is a probability")
        unknown = set(kinds) - set(CHAOS_KINDS)
        if unknown or not kinds:
            raise ValueError(f"kinds: choose among {CHAOS_KINDS}, not {sorted(unknown)}")
        mode = Chaos(
            rate=rate,
            rng=random.Random(seed),
            hold=hold,
            retry_after=retry_after,
            exempt=frozenset(exempt),
            kinds=tuple(kinds),
        )
        with self.lock:
            self.chaos_mode = mode
        return mode

    def chaos_off(self) -> dict[str, int]:
        """End chaos mode (the counts stay readable); returns the faults injected, by kind."""
        with self.lock:
            if self.chaos_mode is not None:
                self.chaos_mode.rate = 0.0
        return self.faults_injected

    def chaos_fault(self, operation: str) -> str | None:
        """The fault chaos mode picks for one request to ``operation`` (counted), if any."""
        with self.lock:
            mode = self.chaos_mode
            if mode is None or not mode.rate or operation in mode.exempt:
                return None
            if mode.rng.random() >= mode.rate:
                return None
            kind = mode.rng.choice(mode.kinds)
            mode.injected[kind] += 1
            return kind

    @property
    def faults_injected(self) -> dict[str, int]:
        """Faults chaos mode injected so far, by kind."""
        with self.lock:
            return dict(self.chaos_mode.injected) if self.chaos_mode else {}

    # ------------------------------------------------------------------- log

    def calls_to(self, method: str, path_or_operation: str) -> list[Call]:
        """Calls with this method whose path or description template is given.

        ``fake.calls_to("GET", "/repos/{owner}/{repo}/pulls/{pull_number}/files")``
        and ``fake.calls_to("GET", "/repos/o/r/pulls/1/files")`` both work.
        """
        method = method.upper()
        with self.lock:
            return [
                c
                for c in self.calls
                if c.method == method
                and (c.path == path_or_operation or c.operation == f"{method} {path_or_operation}")
            ]


def _strip_ref(ref: str) -> str:
    return ref.removeprefix("refs/heads/").strip("/")
