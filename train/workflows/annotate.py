"""Label Studio, live: push the articles a model is least sure of into a project, and pull the annotations back.

`push` creates the project from the model's schema (`train.labelstudio.labelstudio_config`), or updates its labeling
config, and imports the suggested tasks (`train.workflows.suggest`) with the model's pre-annotations; articles already
in the project are not suggested again. `pull` exports the project's annotated tasks as a JSON export snapshot with
the annotators expanded (so votes are named by e-mail), writes it atomically, and can rebuild a dataset whose config
reads that export (as annotations, and as its own article source). Both talk to the server through `label-studio-sdk`
(the `labelstudio` extra), imported here only.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from train.errors import TaawunError
from train.files import atomic_file

if TYPE_CHECKING:
    from label_studio_sdk import LabelStudio

    from train.data.build import BuildResult
    from train.workflows.suggest import Picked

EXPORT_TIMEOUT = 300  # seconds to wait for Label Studio to write an export snapshot
TOKEN_HINT = "copy your access token from Label Studio (Account & Settings > Personal Access Token)"


@dataclass
class Server:
    """A Label Studio server: its URL and the API key (personal access token or legacy token) to call it with."""

    url: str | None
    api_key: str | None

    def connect(self) -> LabelStudio:
        """A client, once the server answered who the key belongs to (fails fast on a wrong URL or key)."""
        if not self.url:
            raise TaawunError("give the Label Studio URL: --url http://HOST:PORT, or set LABEL_STUDIO_URL")
        if not self.api_key:
            raise TaawunError(f"give a Label Studio API key: --api-key KEY, or set LABEL_STUDIO_API_KEY ({TOKEN_HINT})")
        try:
            from label_studio_sdk import LabelStudio
        except ImportError:
            raise TaawunError("talking to Label Studio needs its SDK: pip install 'taawun[labelstudio]'") from None
        self.url = self.url.rstrip("/")
        with self.errors("checking the API key"):
            client = LabelStudio(base_url=self.url, api_key=self.api_key, timeout=60)
            client.users.whoami()
        return client

    @contextmanager
    def errors(self, doing: str) -> Iterator[None]:
        """Turn the SDK's and the network's errors into a TaawunError naming the server and what was being done."""
        import httpx
        from label_studio_sdk.core.api_error import ApiError

        try:
            yield
        except httpx.TransportError as err:
            raise TaawunError(f"cannot reach Label Studio at {self.url} ({type(err).__name__}: {err}); start it, or "
                              "fix --url / LABEL_STUDIO_URL") from None
        except ApiError as err:
            if err.status_code in (401, 403):
                raise TaawunError(f"Label Studio at {self.url} refused the API key while {doing} ({err.status_code}: "
                                  f"{_detail(err.body)}); {TOKEN_HINT}") from None
            raise TaawunError(f"Label Studio at {self.url} answered {err.status_code} while {doing}: "
                              f"{_detail(err.body)}") from None


def _detail(body: Any) -> str:
    """The readable part of a Label Studio error body: its validation errors, else its detail."""
    if isinstance(body, dict):
        errors = body.get("validation_errors")
        if errors:
            return "; ".join(f"{key}: {' '.join(map(str, value)) if isinstance(value, list) else value}"
                             for key, value in errors.items())
        return str(body.get("detail") or body)
    return str(body)[:500]


# -- push -------------------------------------------------------------------------------------------------------------
@dataclass
class PushResult:
    """What `push` did: the project, whether it was created or its config updated, and the tasks it imported."""

    project: str
    project_id: int
    url: str
    created: bool
    config_updated: bool
    already_there: int
    picked: Picked

    def describe(self) -> str:
        """A short summary for the terminal."""
        from train.evaluation.tables import priors_notes

        if self.created:
            what = "created"
        else:
            what = "labeling config updated" if self.config_updated else "labeling config unchanged"
        picked = self.picked
        lines = [f"Label Studio project {self.project!r} (id {self.project_id}, {what}): {self.url}",
                 (f"{len(picked.ids)} of {picked.pool_size} new article(s) imported with pre-annotations "
                  f"({picked.strategy}; {self.already_there} article(s) already in the project were left out)")]
        if picked.scores:
            lines.append(f"model confidence of the imported articles: {1 - max(picked.scores):.3f} (least) to "
                         f"{1 - min(picked.scores):.3f} (most)")
        if picked.near_duplicates_skipped:
            lines.append(f"{picked.near_duplicates_skipped} near-duplicate(s) of picked articles skipped")
        return "\n".join(lines + priors_notes(picked.estimated_priors, "the pool") + picked.malformed)


def push(model_ref: str, source: Path, n: int, server: Server, project: str | None = None,
         strategy: str = "uncertainty", fields: dict[str, str] | None = None, seed: int = 0,
         tasks: list[str] | None = None, tracking_uri: str | None = None, adapt_priors: bool = False) -> PushResult:
    """Suggest `n` articles of `source` with the model and import them, pre-annotated, into a Label Studio project.

    The project (default title: "taawun <schema name>") is created from the model's schema, or its labeling config
    is updated to it (Label Studio refuses a change that drops labels its annotations use: the error says so).
    Articles already in the project (by `data.id`) are left out of the pool, so a second push adds new ones.
    `adapt_priors`: as in `train.workflows.suggest.suggest`.
    """
    from train.labelstudio import labelstudio_config
    from train.models.predictor import load_predictor
    from train.workflows.suggest import pick

    client = server.connect()
    predictor = load_predictor(model_ref, tracking_uri)
    title = project or f"taawun {predictor.schema.name}"
    config = labelstudio_config(predictor.schema, evidence_tasks=predictor.evidence_tasks)
    _check_config(config)
    existing = _find_project(client, server, title)
    there = _article_ids(client, server, existing.id) if existing else frozenset()
    picked = pick(predictor, str(model_ref), source, n, strategy, fields, seed, tasks, exclude=there,
                  adapt_priors=adapt_priors)
    project_id, updated = _create_or_update(client, server, existing, title, config)
    with server.errors(f"importing {len(picked.records)} task(s) into project {title!r}"):
        client.projects.import_tasks(project_id, request=picked.records)
    return PushResult(title, project_id, f"{server.url}/projects/{project_id}/data", existing is None, updated,
                      len(there), picked)


def _check_config(config: str) -> None:
    """Label Studio's own validation of the labeling config, offline, before anything reaches the server."""
    from label_studio_sdk.label_interface import LabelInterface

    try:
        LabelInterface(config).validate()
    except Exception as err:  # the SDK raises several types for an invalid config
        raise TaawunError(f"the labeling config generated from the schema is not valid for Label Studio: "
                          f"{err}") from None


def _find_project(client: LabelStudio, server: Server, title: str) -> Any | None:
    """The project with this exact title, or None; two with that title is an error naming their ids."""
    with server.errors(f"looking for project {title!r}"):
        found = [p for p in client.projects.list(title=title) if p.title == title]
    if len(found) > 1:
        raise TaawunError(f"Label Studio at {server.url} has {len(found)} projects titled {title!r} (ids "
                          f"{sorted(p.id for p in found)}); rename all but one, or give another --project")
    return found[0] if found else None


def _article_ids(client: LabelStudio, server: Server, project_id: int) -> frozenset[str]:
    """The article ids (`data.id`) of the project's tasks."""
    with server.errors("listing the project's tasks"):
        return frozenset(str((task.data or {}).get("id")) for task in client.tasks.list(project=project_id)
                         if (task.data or {}).get("id") is not None)


def _create_or_update(client: LabelStudio, server: Server, existing: Any | None, title: str,
                      config: str) -> tuple[int, bool]:
    """The project's id, and whether its labeling config was changed."""
    if existing is None:
        with server.errors(f"creating project {title!r}"):
            return client.projects.create(title=title, label_config=config).id, False
    with server.errors(f"reading project {title!r}"):
        current = client.projects.get(existing.id).label_config
    if same_config(current, config):
        return existing.id, False
    with server.errors(f"updating the labeling config of project {title!r}"):
        client.projects.update(existing.id, label_config=config)
    return existing.id, True


def same_config(stored: str | None, generated: str) -> bool:
    """Whether two labeling configs are the same XML (Label Studio stores the config it is sent re-formatted)."""
    from xml.etree.ElementTree import ParseError, canonicalize

    try:
        return canonicalize(stored or "", strip_text=True) == canonicalize(generated, strip_text=True)
    except ParseError:
        return False


# -- pull -------------------------------------------------------------------------------------------------------------
@dataclass
class PullResult:
    """What `pull` exported (and built, with a data config)."""

    project: str
    output: Path
    tasks: int
    annotations: int
    annotators: list[str]
    build: BuildResult | None = field(default=None)

    def describe(self) -> str:
        """A short summary for the terminal."""
        lines = [(f"{self.tasks} annotated task(s), {self.annotations} annotation(s) by {len(self.annotators)} "
                  f"annotator(s) ({', '.join(self.annotators) or 'none'}) exported from {self.project!r} into "
                  f"{self.output}")]
        if self.build is not None:
            from train.data.report import render_markdown

            lines.append(render_markdown(self.build.report))
        return "\n".join(lines)


def pull(server: Server, project: str, output: Path, data_config: Path | None = None) -> PullResult:
    """Export a project's annotated tasks (JSON, annotators by e-mail) to `output`; then build `data_config`, if given.

    The data config must read `output` as annotations (`format: labelstudio`), and may read it as its article source
    too; it is checked before anything is exported.
    """
    output = Path(output)
    if output.suffix.lower() != ".json":
        raise TaawunError(f"{output}: write the export to a .json file (a Label Studio JSON export)")
    loaded = _load_reading(data_config, output) if data_config else None
    client = server.connect()
    found = _find_project(client, server, project)
    if found is None:
        with server.errors("listing projects"):
            titles = sorted(p.title for p in client.projects.list())
        raise TaawunError(f"Label Studio at {server.url} has no project titled {project!r}; its projects: {titles}")
    data = _export(client, server, found.id, project)
    with atomic_file(output, "wb") as handle:
        handle.write(data)
    result = _summarize(json.loads(data), project, output)
    if loaded:
        from train.data.build import build_dataset

        result.build = build_dataset(*loaded)
    return result


def _load_reading(path: Path, export: Path):
    """The data config and schema, checked to read `export` as Label Studio annotations."""
    from train.data.config import load_data_config

    config, schema = load_data_config(path)
    target = export.resolve()
    if not any(a.path.resolve() == target and a.format in ("labelstudio", "auto") for a in config.annotations):
        raise TaawunError(
            f"{path} does not read {export}: add it under `annotations:` (path: {export}, format: labelstudio), and "
            "under `sources:` too (format: labelstudio) when no other source holds those articles")
    return config, schema


def _export(client: LabelStudio, server: Server, project_id: int, title: str) -> bytes:
    """A JSON export snapshot of the annotated tasks, with each annotator's e-mail; the snapshot is then deleted."""
    with server.errors(f"exporting project {title!r}"):
        snapshot = client.projects.exports.create(
            project_id, title="taawun pull", task_filter_options={"annotated": "only"},
            serialization_options={"annotations__completed_by": {"only_id": False}})
        deadline = time.monotonic() + EXPORT_TIMEOUT
        while snapshot.status not in ("completed", "failed") and time.monotonic() < deadline:
            time.sleep(0.5)
            snapshot = client.projects.exports.get(project_id, snapshot.id)
        if snapshot.status != "completed":
            raise TaawunError(f"Label Studio at {server.url} did not finish exporting project {title!r} (status "
                              f"{snapshot.status} after {EXPORT_TIMEOUT} s); try again, or export it from the UI")
        data = b"".join(client.projects.exports.download(project_id, snapshot.id, export_type="JSON"))
        client.projects.exports.delete(project_id, snapshot.id)
    return data


def _summarize(tasks: Any, project: str, output: Path) -> PullResult:
    if not isinstance(tasks, list):
        raise TaawunError(f"{output}: Label Studio's export is not a list of tasks; export the project from the UI")
    annotations = [a for t in tasks if isinstance(t, dict) for a in t.get("annotations") or []
                   if isinstance(a, dict) and not a.get("was_cancelled")]
    who = {a["completed_by"].get("email") if isinstance(a.get("completed_by"), dict) else a.get("completed_by")
           for a in annotations}
    return PullResult(project, output, len(tasks), len(annotations), sorted(str(w) for w in who))
