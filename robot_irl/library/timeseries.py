"""Time series as parquet row chunks: one ``timestamp`` column (float64 seconds) plus declared columns.

A column holds one array per row, of a declared shape and dtype; it is stored flat as a parquet
fixed-size list (a plain column for scalars) and comes back as numpy ``[T, *shape]``. Reading
checks every chunk against the declaration, so a wrong dtype or shape is an error naming the file
and the column, never an array of the wrong meaning.
"""
from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from robot_irl.errors import InputError
from robot_irl.library.meta import check_timestamps

ARROW: dict[str, pa.DataType] = {"float64": pa.float64(), "float32": pa.float32(), "int64": pa.int64(),
                                 "int32": pa.int32(), "uint8": pa.uint8(), "bool": pa.bool_()}


@dataclass(frozen=True)
class Column:
    """Declaration of one column: per-row ``shape``, ``dtype``, optional SI ``unit`` and element ``names``."""

    shape: tuple[int, ...] = ()
    dtype: str = "float64"
    unit: str | None = None
    names: tuple[str, ...] | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"shape": list(self.shape), "dtype": self.dtype, "unit": self.unit,
                "names": list(self.names) if self.names is not None else None}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "Column":
        return cls(tuple(d["shape"]), d["dtype"], d.get("unit"),
                   tuple(d["names"]) if d.get("names") is not None else None)

    @property
    def arrow_type(self) -> pa.DataType:
        t = ARROW[self.dtype]
        return pa.list_(t, math.prod(self.shape)) if self.shape else t


def schema_of(columns: Mapping[str, Column]) -> pa.Schema:
    return pa.schema([("timestamp", pa.float64())] + [(n, c.arrow_type) for n, c in columns.items()])


def build_table(columns: Mapping[str, Column], timestamps: Sequence[float],
                values: Mapping[str, Sequence[np.ndarray]]) -> pa.Table:
    arrays = [pa.array(np.asarray(timestamps, dtype=np.float64))]
    for name, col in columns.items():
        data = np.asarray(values[name], dtype=col.dtype)
        if col.shape:
            flat = pa.array(data.reshape(-1))
            arrays.append(pa.FixedSizeListArray.from_arrays(flat, math.prod(col.shape)))
        else:
            arrays.append(pa.array(data))
    return pa.Table.from_arrays(arrays, schema=schema_of(columns))


def fsync_path(path: Path) -> None:
    """Flush a file's (or a folder's entries') data to the disk, so a power loss keeps it."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_chunk(path: Path, table: pa.Table) -> int:
    """Write a parquet chunk atomically and durably (temp file, fsync, rename, fsync of the
    folder): once this returns, a killed process or a power loss keeps the whole chunk."""
    tmp = path.with_name(f".{path.name}.tmp")
    pq.write_table(table, tmp, compression="zstd")
    fsync_path(tmp)
    os.replace(tmp, path)
    fsync_path(path.parent)
    return path.stat().st_size


def check_row(columns: Mapping[str, Column], values: Mapping[str, Any], stream: str) -> dict[str, np.ndarray]:
    """One row's values, each converted to its column's dtype and checked against its shape."""
    missing = set(columns) - set(values)
    extra = set(values) - set(columns)
    if missing or extra:
        raise InputError(f"row has columns {sorted(values)}", field=f"streams.{stream}",
                         expected=f"exactly {sorted(columns)}")
    out = {}
    for name, col in columns.items():
        v = np.asarray(values[name])
        if v.shape != col.shape:
            raise InputError(f"value has shape {v.shape}", field=f"streams.{stream}.columns.{name}",
                             expected=f"shape {col.shape}")
        if v.dtype.kind not in "biuf" or (col.dtype == "bool") != (v.dtype.kind == "b"):
            raise InputError(f"value has dtype {v.dtype}", field=f"streams.{stream}.columns.{name}",
                             expected=col.dtype)
        out[name] = v.astype(col.dtype, copy=False)
    return out


def read_stream(root: Path, stream: str, spec: Mapping[str, Any], file: Path) -> pa.Table:
    """All chunks of one stream, checked against ``spec`` (its meta.json entry)."""
    columns = {n: Column.from_dict(c) for n, c in spec["columns"].items()}
    want = schema_of(columns)
    tables = []
    for i, chunk in enumerate(spec["chunks"]):
        path = root / chunk["file"]
        field = f"streams.{stream}.chunks[{i}]"
        try:
            t = pq.read_table(path)
        except (pa.ArrowInvalid, OSError) as e:
            raise InputError(f"unreadable parquet ({e})", file=path, field=field, expected="a parquet file") from None
        if t.num_rows != chunk["rows"]:
            raise InputError(f"chunk has {t.num_rows} rows, meta.json says {chunk['rows']}", file=path,
                             field=f"{field}.rows", expected=str(chunk["rows"]))
        for fld in want:
            if fld.name not in t.column_names:
                raise InputError("column is missing", file=path, field=f"streams.{stream}.columns.{fld.name}",
                                 expected=str(fld.type))
            got = t.schema.field(fld.name).type
            if got != fld.type:
                raise InputError(f"column has type {got}", file=path, field=f"streams.{stream}.columns.{fld.name}",
                                 expected=f"{fld.type} (shape {columns.get(fld.name, Column()).shape})")
        extra = set(t.column_names) - set(want.names)
        if extra:
            raise InputError(f"undeclared columns {sorted(extra)}", file=path, field=f"streams.{stream}.columns",
                             expected=f"only {want.names}")
        tables.append(t.select(want.names))
    table = pa.concat_tables(tables) if tables else want.empty_table()
    check_timestamps(table.column("timestamp").to_numpy(), root / spec["chunks"][0]["file"] if tables else file,
                     f"streams.{stream}.timestamp")
    return table


def to_arrays(table: pa.Table, columns: Mapping[str, Any]) -> dict[str, np.ndarray]:
    """numpy arrays ``[T, *shape]`` per column, plus ``timestamp [T]``."""
    out = {"timestamp": table.column("timestamp").to_numpy()}
    for name, c in columns.items():
        col = Column.from_dict(c)
        arr = table.column(name).combine_chunks()
        if col.shape:
            flat = arr.flatten().to_numpy(zero_copy_only=False)
            out[name] = flat.astype(col.dtype, copy=False).reshape((len(table), *col.shape))
        else:
            out[name] = arr.to_numpy(zero_copy_only=False).astype(col.dtype, copy=False)
    return out
