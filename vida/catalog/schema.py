"""The catalog's tables as SQLAlchemy 2 models.

The schema is *created* only by the Alembic migrations in ``migrations/``; these
models are how the code reads and writes it.  A test compares the two after
``upgrade head`` so they cannot drift apart.

Design notes
------------
* Integer keys use an explicit :class:`~sqlalchemy.Sequence` because DuckDB has
  no SERIAL/IDENTITY; PostgreSQL accepts the same construct.
* JSON is stored as text (:class:`JSONText`): both DuckDB's ``json_extract`` and
  PostgreSQL's ``::json`` casts read it, and no dialect-specific type is needed.
* No FOREIGN KEY constraints: DuckDB checks them eagerly inside a transaction
  (deleting referencing and referenced rows together fails), so references are
  kept by the code that writes them and verified by ``vida-batch fsck``.
* A clip is identified by ``clip_key = "<class>/<clip_id>"`` because MiT clip ids
  are not unique across classes.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from sqlalchemy import (
    Boolean,
    DateTime,
    Double,
    Integer,
    MetaData,
    Sequence,
    String,
    Text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator

from vida.clock import utcnow

CLIP_STATUSES = ("ok", "flagged", "failed")
SPLITS = ("train", "val", "test")
MODALITIES = ("rgb", "flow", "audio", "generated", "condition", "prototype")
RUN_STATUSES = ("running", "finished", "failed")


class JSONText(TypeDecorator):
    """A JSON value stored as text, portable across DuckDB and PostgreSQL."""

    impl = Text
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Any) -> str | None:
        return None if value is None else json.dumps(value, sort_keys=True)

    def process_result_value(self, value: str | None, dialect: Any) -> Any:
        return None if value is None else json.loads(value)


metadata = MetaData(
    naming_convention={
        "pk": "pk_%(table_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "ix": "ix_%(table_name)s_%(column_0_name)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
    }
)


class Base(DeclarativeBase):
    metadata = metadata


shard_id_seq = Sequence("shards_id_seq")
run_metric_id_seq = Sequence("run_metrics_id_seq")


class Clip(Base):
    """One video clip, whatever happened to it (ok, flagged or failed)."""

    __tablename__ = "clips"

    clip_key: Mapped[str] = mapped_column(String, primary_key=True)
    class_name: Mapped[str] = mapped_column(String, index=True)
    clip_id: Mapped[str] = mapped_column(String)
    source_uri: Mapped[str | None] = mapped_column(String)
    # a clip that is a window [start_s, end_s) of its file (NULL: the whole file)
    start_s: Mapped[float | None] = mapped_column(Double)
    end_s: Mapped[float | None] = mapped_column(Double)
    source_split: Mapped[str | None] = mapped_column(String)
    split: Mapped[str | None] = mapped_column(String)
    duration_s: Mapped[float | None] = mapped_column(Double)
    fps: Mapped[float | None] = mapped_column(Double)
    width: Mapped[int | None] = mapped_column(Integer)
    height: Mapped[int | None] = mapped_column(Integer)
    n_frames: Mapped[int | None] = mapped_column(Integer)
    has_audio: Mapped[bool | None] = mapped_column(Boolean)
    audio_dbfs: Mapped[float | None] = mapped_column(Double)
    silent: Mapped[bool | None] = mapped_column(Boolean)
    status: Mapped[str] = mapped_column(String, default="ok")
    error: Mapped[str | None] = mapped_column(Text)
    content_sha256: Mapped[str | None] = mapped_column(String)
    ingested_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class FeatureSet(Base):
    """A named family of per-clip arrays of one shape, produced one way."""

    __tablename__ = "feature_sets"

    name: Mapped[str] = mapped_column(String, primary_key=True)
    modality: Mapped[str] = mapped_column(String)
    encoder: Mapped[str] = mapped_column(String)
    params: Mapped[Any] = mapped_column(JSONText, default=dict, nullable=False)
    shape: Mapped[Any] = mapped_column(JSONText, nullable=False)
    dtype: Mapped[str] = mapped_column(String)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    produced_by_run: Mapped[str | None] = mapped_column(String)


class Shard(Base):
    """A sealed HDF5 file of one feature set; ``path`` is relative to the store root."""

    __tablename__ = "shards"

    id: Mapped[int] = mapped_column(
        Integer, shard_id_seq, server_default=shard_id_seq.next_value(), primary_key=True
    )
    feature_set: Mapped[str] = mapped_column(String, index=True)
    path: Mapped[str] = mapped_column(String, unique=True)
    n_rows: Mapped[int] = mapped_column(Integer)
    sha256: Mapped[str] = mapped_column(String)
    sealed_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class Feature(Base):
    """Where one clip's array of one feature set lives: shard and row.

    For a ``prototype`` feature set the key is an AudioSet label name, not a clip,
    which is why ``clip_key`` carries no foreign key.
    """

    __tablename__ = "features"

    feature_set: Mapped[str] = mapped_column(String, primary_key=True)
    clip_key: Mapped[str] = mapped_column(String, primary_key=True)
    shard_id: Mapped[int] = mapped_column(Integer, index=True)
    row: Mapped[int] = mapped_column(Integer)


class AudioTag(Base):
    """Top-k AudioSet labels of a clip from one tagger run or import (``source``)."""

    __tablename__ = "audio_tags"

    clip_key: Mapped[str] = mapped_column(String, primary_key=True)
    source: Mapped[str] = mapped_column(String, primary_key=True)
    rank: Mapped[int] = mapped_column(Integer, primary_key=True)
    label: Mapped[str] = mapped_column(String)
    score: Mapped[float | None] = mapped_column(Double)


class DictionaryEntry(Base):
    """One row of a semantic dictionary: class -> AudioSet label of given rank."""

    __tablename__ = "dictionary_entries"

    dictionary: Mapped[str] = mapped_column(String, primary_key=True)
    class_name: Mapped[str] = mapped_column(String, primary_key=True)
    rank: Mapped[int] = mapped_column(Integer, primary_key=True)
    audio_label: Mapped[str] = mapped_column(String)
    similarity: Mapped[float | None] = mapped_column(Double)


class FilterDecision(Base):
    """Keep/drop of one clip by one named filter, with the IoU that decided it."""

    __tablename__ = "filter_decisions"

    filter_name: Mapped[str] = mapped_column(String, primary_key=True)
    clip_key: Mapped[str] = mapped_column(String, primary_key=True)
    iou: Mapped[float | None] = mapped_column(Double)
    keep: Mapped[bool] = mapped_column(Boolean)


class MissingAudio(Base):
    """A clip whose audio an experiment treated as missing: in ``split``, at missing
    rate ``rate``, for its trainings of ``seed`` (drawn by :mod:`vida.models.missing`:
    stratified by class, nested over rates)."""

    __tablename__ = "missing_audio"

    experiment_id: Mapped[str] = mapped_column(String, primary_key=True)
    seed: Mapped[int] = mapped_column(Integer, primary_key=True)
    split: Mapped[str] = mapped_column(String, primary_key=True)
    rate: Mapped[float] = mapped_column(Double, primary_key=True)
    clip_key: Mapped[str] = mapped_column(String, primary_key=True)


class ClipRating(Base):
    """How people rated a clip, from a dataset's annotations (``source``: AVMIT's
    ``video_ratings.csv`` or ``test_set.csv``): how many raters gave each score, whether
    the labelled action is ``audible`` by the import's rule, the class the raters'
    dataset gives it (``rated_class``; AVMIT relabels some MiT clips) beside the class
    it came with (``source_class``), and whether the clip is in the rated test set."""

    __tablename__ = "clip_ratings"

    clip_key: Mapped[str] = mapped_column(String, primary_key=True)
    source: Mapped[str] = mapped_column(String, primary_key=True)
    n_score1: Mapped[int | None] = mapped_column(Integer)
    n_score2: Mapped[int | None] = mapped_column(Integer)
    n_score3: Mapped[int | None] = mapped_column(Integer)
    audible: Mapped[bool | None] = mapped_column(Boolean)
    rated_class: Mapped[str | None] = mapped_column(String)
    source_class: Mapped[str | None] = mapped_column(String)
    location: Mapped[str | None] = mapped_column(String)
    test_set: Mapped[bool | None] = mapped_column(Boolean)


class Caption(Base):
    """A caption of one frame of a clip by one captioner."""

    __tablename__ = "captions"

    clip_key: Mapped[str] = mapped_column(String, primary_key=True)
    captioner: Mapped[str] = mapped_column(String, primary_key=True)
    frame_index: Mapped[int] = mapped_column(Integer, primary_key=True)
    caption: Mapped[str] = mapped_column(Text)


class Run(Base):
    """One batch job execution (training, generation, tagging, experiment...)."""

    __tablename__ = "runs"

    run_id: Mapped[str] = mapped_column(String, primary_key=True)
    kind: Mapped[str] = mapped_column(String)
    arch: Mapped[str | None] = mapped_column(String)
    params: Mapped[Any] = mapped_column(JSONText, default=dict, nullable=False)
    query: Mapped[str | None] = mapped_column(Text)
    feature_sets: Mapped[Any] = mapped_column(JSONText, default=list, nullable=False)
    seed: Mapped[int | None] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String, default="running")
    started_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime)
    checkpoint: Mapped[str | None] = mapped_column(String)
    code_version: Mapped[str | None] = mapped_column(String)
    experiment_id: Mapped[str | None] = mapped_column(String, index=True)
    error: Mapped[str | None] = mapped_column(Text)
    # the process that runs it, and when it last showed it was alive (0007)
    host: Mapped[str | None] = mapped_column(String)
    pid: Mapped[int | None] = mapped_column(Integer)
    heartbeat_at: Mapped[datetime | None] = mapped_column(DateTime)


class RunMetric(Base):
    """A metric value of a run at one epoch on one split (epoch NULL: final)."""

    __tablename__ = "run_metrics"

    id: Mapped[int] = mapped_column(
        Integer,
        run_metric_id_seq,
        server_default=run_metric_id_seq.next_value(),
        primary_key=True,
    )
    run_id: Mapped[str] = mapped_column(String, index=True)
    epoch: Mapped[int | None] = mapped_column(Integer)
    split: Mapped[str] = mapped_column(String)
    name: Mapped[str] = mapped_column(String)
    value: Mapped[float] = mapped_column(Double)


class Prediction(Base):
    """A classifier run's prediction for one clip."""

    __tablename__ = "predictions"

    run_id: Mapped[str] = mapped_column(String, primary_key=True)
    clip_key: Mapped[str] = mapped_column(String, primary_key=True)
    split: Mapped[str] = mapped_column(String)
    true_class: Mapped[str] = mapped_column(String)
    pred_class: Mapped[str] = mapped_column(String)
    score: Mapped[float | None] = mapped_column(Double)


class RepresentativeFrame(Base):
    """A frame of the clip's grid chosen as representative (CAFMap), with its motion."""

    __tablename__ = "representative_frames"

    clip_key: Mapped[str] = mapped_column(String, primary_key=True)
    frame_index: Mapped[int] = mapped_column(Integer, primary_key=True)
    motion: Mapped[float | None] = mapped_column(Double)
    rule: Mapped[str] = mapped_column(String)


class ConditionLabel(Base):
    """An AudioSet label chosen for a representative frame's caption in a condition set."""

    __tablename__ = "condition_labels"

    condition_set: Mapped[str] = mapped_column(String, primary_key=True)
    clip_key: Mapped[str] = mapped_column(String, primary_key=True)
    frame_index: Mapped[int] = mapped_column(Integer, primary_key=True)
    rank: Mapped[int] = mapped_column(Integer, primary_key=True)
    label: Mapped[str] = mapped_column(String)
    similarity: Mapped[float] = mapped_column(Double)


class FeatureFailure(Base):
    """Why ``encode`` could not produce a clip's features of one set (the clip stays ok)."""

    __tablename__ = "feature_failures"

    feature_set: Mapped[str] = mapped_column(String, primary_key=True)
    clip_key: Mapped[str] = mapped_column(String, primary_key=True)
    run_id: Mapped[str | None] = mapped_column(String, nullable=True)
    error: Mapped[str] = mapped_column(Text)
    failed_at: Mapped[datetime] = mapped_column(DateTime)


class CatalogSetting(Base):
    """One setting of the catalog as a whole (``media_root``: what relative source
    paths of clips are relative to)."""

    __tablename__ = "catalog_settings"

    key: Mapped[str] = mapped_column(String, primary_key=True)
    value: Mapped[str | None] = mapped_column(Text, nullable=True)
    updated_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class QuarantinedShard(Base):
    """A shard ``fsck --repair`` moved to ``quarantine/``, with the feature rows
    (``[[clip_key, row], ...]``) and clip content hashes it removed from the catalog,
    so that ``fsck --restore`` can put an intact one back."""

    __tablename__ = "quarantined_shards"

    shard_id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    feature_set: Mapped[str] = mapped_column(String)
    path: Mapped[str] = mapped_column(String)
    n_rows: Mapped[int] = mapped_column(Integer)
    sha256: Mapped[str] = mapped_column(String)
    sealed_at: Mapped[datetime | None] = mapped_column(DateTime)
    problem: Mapped[str] = mapped_column(String)
    features: Mapped[Any] = mapped_column(JSONText, nullable=False)
    cleared_hashes: Mapped[Any] = mapped_column(JSONText, nullable=False)
    quarantined_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    restored_at: Mapped[datetime | None] = mapped_column(DateTime)


def model_of(table: Any) -> type[Base]:
    """The ORM class of a table given by name (``"clips"``) or already as its class:
    records built in workers name their table, so that workers need no schema."""
    if isinstance(table, str):
        for mapper in Base.registry.mappers:
            if mapper.class_.__tablename__ == table:
                return mapper.class_
        raise KeyError(f"no catalog table named {table!r}")
    return table
