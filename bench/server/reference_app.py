"""The reference AWS Parquet Query Engine's /query-parquet endpoint, as its
README describes it: FastAPI + DuckDB, a new connection per request, a
COUNT(*) and an ORDER BY id LIMIT/OFFSET query on every call. It reads the
local file instead of S3 (DATA_ROOT), so both servers read the same bytes.
"""
import os

import duckdb
from fastapi import FastAPI, HTTPException, Query

app = FastAPI()
ROOT = os.environ.get("DATA_ROOT", ".")


@app.get("/query-parquet")
def query_parquet(
    statename: str,
    dname: str,
    page: int = Query(0),
    page_size: int = Query(10, ge=1),
):
    if statename != statename.lower() or dname != dname.lower():
        raise HTTPException(status_code=400, detail="Names must be lowercase")
    path = f"{ROOT}/state={statename}/dname={dname}/{dname}.parquet"
    if not os.path.exists(path):
        raise HTTPException(status_code=404, detail="Parquet file not found")
    try:
        with duckdb.connect() as con:
            total = con.execute(f"SELECT COUNT(*) FROM read_parquet('{path}')").fetchone()[0]
            offset = (page - 1) * page_size
            cur = con.execute(
                f"SELECT * FROM read_parquet('{path}') ORDER BY id LIMIT {page_size} OFFSET {offset}"
            )
            cols = [d[0] for d in cur.description]
            data = [dict(zip(cols, row)) for row in cur.fetchall()]
    except Exception as e:  # the reference answers every failure with a 500
        raise HTTPException(status_code=500, detail=str(e))
    return {"data": data, "total_rows": total, "page": page, "page_size": page_size}
