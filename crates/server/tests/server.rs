//! The server through real HTTP: a server started in-process on port 0 for
//! each store (a local folder, and the S3 server when `TESSERA_TEST_S3` is
//! set), every endpoint, auth, hostile input and limits.

use std::sync::Arc;

use arrow::array::{Int64Array, RecordBatch, StringArray};
use arrow::datatypes::{DataType, Field, Schema};
use reqwest::StatusCode;
use serde_json::{json, Value};
use tessera_server::{Application, Config};
use tessera_store::Location;
use tessera_test_support::{s3_base, store_options, unique};

const ROWS: i64 = 25_000;

/// The test Parquet file: `id` 0.., `name`, `sales`, written in row groups
/// of 4,000 rows so that pages cross row-group boundaries.
fn sales_parquet() -> Vec<u8> {
    let schema = Arc::new(Schema::new(vec![
        Field::new("id", DataType::Int64, false),
        Field::new("name", DataType::Utf8, true),
        Field::new("sales", DataType::Int64, true),
    ]));
    let ids: Vec<i64> = (0..ROWS).collect();
    let batch = RecordBatch::try_new(
        schema.clone(),
        vec![
            Arc::new(Int64Array::from(ids.clone())),
            Arc::new(StringArray::from_iter(
                ids.iter()
                    .map(|i| (i % 7 != 3).then(|| format!("product-{i}"))),
            )),
            Arc::new(Int64Array::from_iter_values(
                ids.iter().map(|i| i * 10 % 997),
            )),
        ],
    )
    .unwrap();
    let props = parquet::file::properties::WriterProperties::builder()
        .set_max_row_group_row_count(Some(4_000))
        .set_data_page_row_count_limit(500)
        .build();
    let mut out = Vec::new();
    let mut w = parquet::arrow::ArrowWriter::try_new(&mut out, schema, Some(props)).unwrap();
    w.write(&batch).unwrap();
    w.close().unwrap();
    out
}

/// Write the fixtures under `store` and return a config serving them, with
/// the environment's store options (the S3 server's endpoint and keys).
async fn fixture(store: &str) -> Config {
    let root = Location::open(store, &store_options()).await.unwrap();
    let put = |key: &str, data: Vec<u8>| {
        let loc = root.join(key).unwrap();
        async move { loc.write(data).await.unwrap() }
    };
    put(
        "state=california/dname=sales/sales.parquet",
        sales_parquet(),
    )
    .await;
    put("raw/reads.fq", reads().into_bytes()).await;
    let reads_loc = root.join("raw/reads.fq").unwrap();
    let (index, _) = tessera_slice::Index::build(&reads_loc)
        .with_spacing(512)
        .await
        .unwrap();
    index
        .save(&tessera_slice::Index::location_for(&reads_loc, None).unwrap())
        .await
        .unwrap();
    put(
        "events/day=2024-03-01/part-0.csv",
        b"id,user,amount\n1,ann,10\n2,bob,20\n".to_vec(),
    )
    .await;
    put(
        "events/day=2024-03-02/part-0.csv",
        b"id,user,amount\n3,cy,30\n4,\"O'Neil, D\",40\n".to_vec(),
    )
    .await;
    let paths: String = (0..50)
        .map(|i| format!("s3://lab/v1/ad/G{}/model_tissue_{}.tl\n", i % 5, i))
        .collect();
    let t =
        tessera_manifest::Template::parse("**/v1/ad/{gene_id}/model_tissue_{tissue_id:int32}.tl")
            .unwrap();
    let m = tessera_manifest::BuildManifest::new(t, paths)
        .with_row_group_rows(1 << 20)
        .run()
        .unwrap();
    put("manifests/genes.parquet", m.to_parquet().unwrap()).await;

    let mut c = Config::from_toml(
        r#"
bind = "127.0.0.1:0"
single_writer = true
[tables.sales]
location = "state=california/dname=sales/sales.parquet"
description = "the reference app's file"
[tables.events]
location = "events/"
format = "csv"
[tables.secret]
location = "state=california/dname=sales/sales.parquet"
namespace = "team-b"
[manifests.genes]
location = "manifests/genes.parquet"
[manifests.private]
location = "manifests/genes.parquet"
namespace = "team-b"
"#,
        "test",
    )
    .unwrap();
    c.store = store.to_string();
    c.store_options = store_options();
    c
}

struct Server {
    base: String,
    http: reqwest::Client,
    app: tessera_server::AppState,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl Server {
    async fn start(config: Config) -> Server {
        let app = Application::build(config).await.unwrap();
        let base = format!("http://{}", app.local_addr());
        let state = app.state().clone();
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(app.run_until(async {
            let _ = rx.await;
        }));
        Server {
            base,
            http: reqwest::Client::new(),
            app: state,
            stop: Some(tx),
            task,
        }
    }

    async fn get(&self, path: &str) -> (StatusCode, Value) {
        self.get_auth(path, None).await
    }

    async fn get_auth(&self, path: &str, token: Option<&str>) -> (StatusCode, Value) {
        let mut r = self.http.get(format!("{}{path}", self.base));
        if let Some(t) = token {
            r = r.bearer_auth(t);
        }
        let resp = r.send().await.unwrap();
        let status = resp.status();
        let text = resp.text().await.unwrap();
        let v = serde_json::from_str(&text).unwrap_or(Value::String(text));
        (status, v)
    }

    async fn sql(&self, sql: &str) -> (StatusCode, Value) {
        let resp = self
            .http
            .post(format!("{}/v1/sql", self.base))
            .json(&json!({ "sql": sql }))
            .send()
            .await
            .unwrap();
        let status = resp.status();
        let text = resp.text().await.unwrap();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    async fn stop(mut self) {
        let _ = self.stop.take().unwrap().send(());
        self.task.await.unwrap().unwrap();
    }
}

fn ids(v: &Value) -> Vec<i64> {
    v["data"]
        .as_array()
        .unwrap_or_else(|| panic!("no data in {v}"))
        .iter()
        .map(|r| r["id"].as_i64().unwrap())
        .collect()
}

fn assert_error(status: StatusCode, v: &Value, want_status: u16, want_text: &str) {
    assert_eq!(status.as_u16(), want_status, "{v}");
    assert!(v["error"].is_string(), "no error code in {v}");
    let msg = v["message"].as_str().unwrap_or_default();
    assert!(msg.contains(want_text), "'{want_text}' not in '{msg}'");
}

async fn query_parquet_contract(s: &Server) {
    let q = "/query-parquet?statename=california&dname=sales";
    // The reference default page=0 works (the reference app fails with a 500).
    let (st, v) = s.get(q).await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["total_rows"], ROWS);
    assert_eq!(
        (v["page"].as_u64(), v["page_size"].as_u64()),
        (Some(0), Some(10))
    );
    assert_eq!(ids(&v), (0..10).collect::<Vec<_>>());
    assert_eq!(v["data"][3]["name"], Value::Null, "nulls are explicit");
    assert_eq!(v["data"][1]["name"], "product-1");
    // A page across a row-group boundary (rows 3,990..4,010).
    let (_, v) = s.get(&format!("{q}&page=199&page_size=20")).await;
    assert_eq!(ids(&v), (3980..4000).collect::<Vec<_>>());
    let (_, v) = s.get(&format!("{q}&page=133&page_size=30")).await;
    assert_eq!(ids(&v), (3990..4020).collect::<Vec<_>>());
    // Deep page, last (partial) page, past the end.
    let (_, v) = s.get(&format!("{q}&page=2400&page_size=10")).await;
    assert_eq!(ids(&v), (24000..24010).collect::<Vec<_>>());
    let (_, v) = s.get(&format!("{q}&page=2&page_size=10000")).await;
    assert_eq!(ids(&v), (20000..ROWS).collect::<Vec<_>>());
    let (st, v) = s.get(&format!("{q}&page=3&page_size=10000")).await;
    assert_eq!(st, 200);
    assert!(ids(&v).is_empty());
    // Client mistakes: 400 with a message naming the parameter.
    for (query, want) in [
        ("statename=California&dname=sales", "statename='California'"),
        ("statename=..%2F..%2Fetc&dname=sales", "statename="),
        (
            "statename=ca%27%3B%20DROP%20TABLE%20x&dname=sales",
            "statename=",
        ),
        ("statename=california&dname=sales%22", "dname="),
        ("dname=sales", "statename is required"),
        (
            "statename=california&dname=sales&page_size=0",
            "page_size=0 is out of range",
        ),
        (
            "statename=california&dname=sales&page_size=10001",
            "page_size=10001",
        ),
        ("statename=california&dname=sales&page=-1", "page='-1'"),
        (
            "statename=california&dname=sales&page=99999999999999999999999",
            "page=",
        ),
        ("statename=california&dname=sales&page=abc", "page='abc'"),
        (
            "statename=california&dname=sales&pgae=1",
            "unknown parameter 'pgae'",
        ),
    ] {
        let (st, v) = s.get(&format!("/query-parquet?{query}")).await;
        assert_error(st, &v, 400, want);
    }
    let (st, v) = s.get("/query-parquet?statename=texas&dname=sales").await;
    assert_error(st, &v, 404, "statename='texas'");
}

async fn tables(s: &Server) {
    let (st, v) = s.get("/v1/tables").await;
    assert_eq!(st, 200);
    let names: Vec<&str> = v["tables"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["events", "sales"], "team-b's table is not listed");
    let (_, v) = s.get("/v1/tables/sales/schema").await;
    assert_eq!(
        v["columns"][0],
        json!({"name": "id", "type": "Int64", "nullable": false})
    );
    let (_, v) = s.get("/v1/tables/events/schema").await;
    let cols: Vec<&str> = v["columns"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        cols,
        ["id", "user", "amount", "day"],
        "hive partition column"
    );

    // Unfiltered: total from the footer, a cursor to the next page.
    let (_, v) = s
        .get("/v1/tables/sales/rows?limit=5&page=2&columns=sales,id")
        .await;
    assert_eq!(v["total_rows"], ROWS);
    assert_eq!(ids(&v), [10, 11, 12, 13, 14]);
    assert_eq!(
        v["data"][0].as_object().unwrap().keys().collect::<Vec<_>>(),
        ["id", "sales"],
        "only the asked columns"
    );
    // Columns come in the asked order (JSON objects here are key-sorted; CSV is not).
    let csv = s
        .http
        .get(format!(
            "{}/v1/tables/sales/rows?limit=2&columns=sales,id&format=csv",
            s.base
        ))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(csv, "sales,id\n0,0\n10,1\n");
    let next = v["next_cursor"].as_str().unwrap().to_string();
    let (_, v2) = s
        .get(&format!(
            "/v1/tables/sales/rows?limit=5&columns=sales,id&cursor={next}"
        ))
        .await;
    assert_eq!(ids(&v2), [15, 16, 17, 18, 19]);
    let (st, v3) = s
        .get(&format!("/v1/tables/sales/rows?limit=6&cursor={next}"))
        .await;
    assert_error(st, &v3, 400, "another query");

    // Filters, sort, typed values.
    let (_, v) = s
        .get("/v1/tables/sales/rows?filter=id:gte:100&filter=id:lt:110&filter=sales:in:1000,50,970&sort=-id")
        .await;
    assert_eq!(v["total_rows"], 0, "{v}");
    let (_, v) = s
        .get("/v1/tables/sales/rows?filter=id:gte:100&filter=id:lt:110&sort=-id&limit=3")
        .await;
    assert_eq!(
        (ids(&v), v["total_rows"].as_u64()),
        (vec![109, 108, 107], Some(10))
    );
    let (_, v) = s
        .get("/v1/tables/sales/rows?filter=name:like:product-2499_")
        .await;
    assert_eq!(
        ids(&v),
        (24990..25000).filter(|i| i % 7 != 3).collect::<Vec<_>>()
    );
    let (_, v) = s
        .get("/v1/tables/events/rows?filter=day:eq:2024-03-02&filter=user:in:[%22O'Neil,%20D%22]")
        .await;
    assert_eq!(ids(&v), [4], "{v}");
    let (_, v) = s.get("/v1/tables/events/rows?sort=-amount&limit=2").await;
    assert_eq!((ids(&v), v["total_rows"].as_u64()), (vec![4, 3], Some(4)));
    // An empty sort is no sort, not a query engine fault (found by
    // schemathesis: it answered 502).
    for empty in ["", "%20", ",", "%20,%20"] {
        let (st, v) = s.get(&format!("/v1/tables/events/rows?sort={empty}")).await;
        assert_eq!(
            (st.as_u16(), v["total_rows"].as_u64()),
            (200, Some(4)),
            "sort={empty}: {v}"
        );
    }

    // Formats.
    let csv = s
        .http
        .get(format!(
            "{}/v1/tables/sales/rows?limit=2&format=csv",
            s.base
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(csv.headers()["content-type"], "text/csv; charset=utf-8");
    assert_eq!(csv.headers()["x-total-rows"], ROWS.to_string().as_str());
    assert_eq!(
        csv.text().await.unwrap(),
        "id,name,sales\n0,product-0,0\n1,product-1,10\n"
    );
    let arrow_bytes = s
        .http
        .get(format!("{}/v1/tables/events/rows?limit=3", s.base))
        .header("accept", "application/vnd.apache.arrow.stream")
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    let reader =
        arrow::ipc::reader::StreamReader::try_new(std::io::Cursor::new(arrow_bytes), None).unwrap();
    let n: usize = reader.map(|b| b.unwrap().num_rows()).sum();
    assert_eq!(n, 3);
    let pq = s
        .http
        .get(format!(
            "{}/v1/tables/sales/rows?limit=7&format=parquet",
            s.base
        ))
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    let r = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(pq)
        .unwrap()
        .build()
        .unwrap();
    assert_eq!(r.map(|b| b.unwrap().num_rows()).sum::<usize>(), 7);

    // Mistakes.
    for (path, status, want) in [
        ("/v1/tables/nope/rows", 404, "no table named 'nope'"),
        ("/v1/tables/secret/rows", 403, "another namespace"),
        ("/v1/tables/sales/rows?filter=id:gt:abc", 400, "not a Int64"),
        (
            "/v1/tables/sales/rows?filter=id%22;drop:eq:1",
            400,
            "no column",
        ),
        ("/v1/tables/sales/rows?filter=id", 400, "column:op:value"),
        ("/v1/tables/sales/rows?filter=id:regex:1", 400, "unknown op"),
        ("/v1/tables/sales/rows?sort=nope", 400, "no column 'nope'"),
        ("/v1/tables/sales/rows?columns=id,../x", 400, "no column"),
        ("/v1/tables/sales/rows?limit=0", 400, "limit=0"),
        ("/v1/tables/sales/rows?limit=100000", 400, "limit=100000"),
        ("/v1/tables/sales/rows?page=1&cursor=abc", 400, "not both"),
        ("/v1/tables/sales/rows?cursor=abc", 400, "cursor"),
        ("/v1/tables/sales/rows?format=xls", 400, "format 'xls'"),
        ("/v1/nothing", 404, "no such endpoint"),
    ] {
        let (st, v) = s.get(path).await;
        assert_error(st, &v, status, want);
    }
}

async fn sql(s: &Server) {
    let (st, v) = s
        .sql(
            "SELECT day, count(*) AS n, sum(amount) AS total FROM events GROUP BY day ORDER BY day",
        )
        .await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(
        v["data"],
        json!([{"day": "2024-03-01", "n": 2, "total": 30}, {"day": "2024-03-02", "n": 2, "total": 70}])
    );
    assert_eq!(v["rows"], 2);
    let (_, v) = s
        .sql("SELECT count(*) AS n FROM sales WHERE id % 2 = 0")
        .await;
    assert_eq!(v["data"][0]["n"], ROWS / 2);
    // The row limit applies.
    let (_, v) = s.sql("SELECT id FROM sales").await;
    assert_eq!(v["rows"], 1000, "row limit from the config");
    assert_eq!(v["row_limit"], 1000);
    for bad in [
        "CREATE TABLE x AS SELECT 1",
        "CREATE EXTERNAL TABLE x STORED AS CSV LOCATION '/etc/passwd'",
        "INSERT INTO sales VALUES (1, 'a', 2)",
        "COPY sales TO '/tmp/out.csv'",
        "DROP TABLE sales",
        "SET datafusion.execution.batch_size = 1",
    ] {
        let (st, v) = s.sql(bad).await;
        assert_eq!(st, 400, "{bad}: {v}");
    }
    let (st, v) = s.sql("SELECT * FROM secret").await;
    assert_error(st, &v, 400, "secret");
    let (st, v) = s.sql("SELEC 1").await;
    assert_error(st, &v, 400, "sql");
    let resp = s
        .http
        .post(format!("{}/v1/sql", s.base))
        .body("{\"sql\": 1}")
        .header("content-type", "application/json")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    let csv = s
        .http
        .post(format!("{}/v1/sql?format=csv", s.base))
        .json(&json!({"sql": "SELECT id FROM sales WHERE id < 3 ORDER BY id"}))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(csv, "id\n0\n1\n2\n");
}

async fn datasets(s: &Server) {
    let name = "shop/events";
    let post = |query: &str, body: &'static str| {
        s.http
            .post(format!("{}/v1/datasets/{name}?{query}", s.base))
            .header("content-type", "text/csv")
            .body(body)
            .send()
    };
    let r = post(
        "version=v1&date_key=day",
        "id,day,amount\n1,2024-03-01,10\n2,2024-03-02,20\n",
    )
    .await
    .unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    let r = post("version=v2", "id,day,amount\n3,2024-03-02,30\n")
        .await
        .unwrap();
    let report: Value = r.json().await.unwrap();
    assert_eq!(
        (report["rows"].as_u64(), report["version_key"].as_str()),
        (Some(1), Some("v2"))
    );
    let (st, v) = s.get(&format!("/v1/datasets/{name}")).await;
    assert_eq!(st, 200, "{v}");
    let mut got = ids(&v);
    got.sort();
    assert_eq!(got, [1, 2, 3]);
    assert_eq!(v["rows"], 3);
    let (_, v) = s.get(&format!("/v1/datasets/{name}?last")).await;
    assert_eq!(ids(&v), [3]);
    let (_, v) = s
        .get(&format!(
            "/v1/datasets/{name}?where=day%20%3D%20%272024-03-01%27&columns=id,amount"
        ))
        .await;
    assert_eq!(v["data"], json!([{"id": 1, "amount": 10}]));
    let (_, v) = s
        .get(&format!("/v1/datasets/{name}?as_of=0&format=json"))
        .await;
    assert_eq!(ids(&v).len(), 2, "{v}");
    let (_, v) = s.get(&format!("/v1/datasets/{name}?view=history")).await;
    assert_eq!(v["history"].as_array().unwrap().len(), 2, "{v}");
    let (_, v) = s.get("/v1/datasets").await;
    assert_eq!(v["datasets"][0]["name"], name);
    assert_eq!(v["namespace"], "default");
    for (path, status, want) in [
        ("/v1/datasets/shop/missing", 404, "does not exist"),
        ("/v1/datasets/shop/events?as_of=99", 400, "no version 99"),
        ("/v1/datasets/shop/events?where=nope%20%3E%201", 400, "nope"),
        ("/v1/datasets/shop/events?view=all", 400, "view='all'"),
        ("/v1/datasets/..%2Fx", 400, "invalid dataset name"),
    ] {
        let (st, v) = s.get(path).await;
        assert_error(st, &v, status, want);
    }
    let r = post("version=v3", "id,day,amount\nx,2024-03-02,oops\n")
        .await
        .unwrap();
    let st = r.status();
    assert_eq!(st, 400, "a conflicting type: {}", r.text().await.unwrap());
    let r = s
        .http
        .post(format!("{}/v1/datasets/{name}", s.base))
        .body("id\n1\n")
        .send()
        .await
        .unwrap();
    let v: Value = r.json().await.unwrap();
    assert!(v["message"].as_str().unwrap().contains("format="), "{v}");
}

async fn manifests(s: &Server) {
    let (_, v) = s.get("/v1/manifests").await;
    assert_eq!(v["manifests"].as_array().unwrap().len(), 1, "{v}");
    let (st, v) = s
        .get("/v1/manifests/genes/lookup?gene_id=G2&tissue_id=017")
        .await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["count"], 1);
    assert_eq!(
        v["records"][0]["file_path"],
        "s3://lab/v1/ad/G2/model_tissue_17.tl"
    );
    let (_, v) = s.get("/v1/manifests/genes/lookup?gene_id=G2").await;
    assert_eq!(v["count"], 10);
    let (_, v) = s.get("/v1/manifests/genes/unique/gene_id").await;
    assert_eq!(v["values"], json!(["G0", "G1", "G2", "G3", "G4"]));
    for (path, status, want) in [
        ("/v1/manifests/genes/lookup?tissue_id=abc", 400, "abc"),
        ("/v1/manifests/genes/lookup?color=red", 400, "color"),
        ("/v1/manifests/genes/unique/color", 400, "color"),
        ("/v1/manifests/nope/lookup?a=1", 404, "no manifest"),
        (
            "/v1/manifests/private/lookup?gene_id=G1",
            403,
            "another namespace",
        ),
    ] {
        let (st, v) = s.get(path).await;
        assert_error(st, &v, status, want);
    }
}

fn reads() -> String {
    (0..300)
        .map(|i| format!("@r{i}\nACGTACGT\n+\n@@II+III\n"))
        .collect()
}

async fn slices(s: &Server) {
    let post = |body: Value| {
        let http = s.http.clone();
        let url = format!("{}/v1/slices/plan", s.base);
        async move {
            let r = http.post(url).json(&body).send().await.unwrap();
            let st = r.status();
            let text = r.text().await.unwrap();
            (
                st,
                serde_json::from_str(&text).unwrap_or(Value::String(text)),
            )
        }
    };
    let (st, v) = post(json!({"object": "raw/reads.fq", "count": 3})).await;
    assert_eq!(st, 200, "{v}");
    let list = v.as_array().unwrap();
    assert_eq!(list.len(), 3);
    assert!(list[0]["url"].as_str().unwrap().ends_with("raw/reads.fq"));
    let mut all = String::new();
    for (i, desc) in list.iter().enumerate() {
        let r = s
            .http
            .get(format!(
                "{}/v1/slices/data?object=raw/reads.fq&count=3&slice={i}",
                s.base
            ))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        assert_eq!(
            r.headers()["x-tessera-first-record"].to_str().unwrap(),
            desc["first_record"].to_string()
        );
        all.push_str(&r.text().await.unwrap());
    }
    assert_eq!(all, reads());
    let (st, v) = post(json!({"object": "raw/reads.fq", "records": 7})).await;
    assert_eq!(
        (st.as_u16(), v.as_array().map(|a| a.len())),
        (200, Some(43))
    );
    for (body, status, want) in [
        (
            json!({"object": "../etc/passwd", "count": 2}),
            400,
            "segments",
        ),
        (
            json!({"object": "file:///etc/passwd", "count": 2}),
            400,
            "not a URL",
        ),
        (
            json!({"object": "raw/reads.fq", "count": 2, "records": 3}),
            400,
            "exactly one",
        ),
        (
            json!({"object": "raw/reads.fq", "count": 0}),
            400,
            "at least 1",
        ),
        (
            json!({"object": "raw/missing.fq", "count": 2}),
            404,
            "missing.fq",
        ),
        (
            json!({"object": "state=california/dname=sales/sales.parquet", "count": 2}),
            404,
            "no index",
        ),
        (
            json!({"object": "raw/reads.fq", "count": 2, "extra": 1}),
            400,
            "extra",
        ),
    ] {
        let (st, v) = post(body).await;
        assert_error(st, &v, status, want);
    }
    let (st, v) = s
        .get("/v1/slices/data?object=raw/reads.fq&count=3&slice=9")
        .await;
    assert_error(st, &v, 404, "no slice 9");
    let (st, v) = s.get("/v1/slices/data?object=raw/reads.fq&count=3").await;
    assert_error(st, &v, 400, "slice");
}

async fn service(s: &Server) {
    let (st, v) = s.get("/healthz").await;
    assert_eq!((st.as_u16(), v["status"].as_str()), (200, Some("ok")));
    let (st, v) = s.get("/openapi.json").await;
    assert_eq!(st, 200);
    // Without auth no operation asks for a credential.
    assert!(v["security"].is_null(), "{}", v["security"]);
    assert!(v["components"]["securitySchemes"]["bearer"].is_object());
    for p in [
        "/query-parquet",
        "/v1/tables/{table}/rows",
        "/v1/sql",
        "/v1/datasets/{name}",
        "/v1/manifests/{manifest}/lookup",
    ] {
        assert!(
            v["paths"][p].is_object(),
            "{p} missing from the OpenAPI document"
        );
    }
    // The query parameters are documented from the same typed structs the
    // handlers read.
    let params = |path: &str, method: &str| -> Vec<(String, String, bool)> {
        v["paths"][path][method]["parameters"]
            .as_array()
            .unwrap_or_else(|| panic!("{method} {path} has no parameters"))
            .iter()
            .map(|p| {
                (
                    p["name"].as_str().unwrap().to_string(),
                    p["in"].as_str().unwrap().to_string(),
                    p["required"].as_bool().unwrap_or(false),
                )
            })
            .collect()
    };
    let qp = params("/query-parquet", "get");
    for (name, required) in [
        ("statename", true),
        ("dname", true),
        ("page", false),
        ("page_size", false),
    ] {
        assert!(
            qp.contains(&(name.into(), "query".into(), required)),
            "{name}: {qp:?}"
        );
    }
    let rows = params("/v1/tables/{table}/rows", "get");
    for name in [
        "columns", "filter", "sort", "limit", "page", "cursor", "format",
    ] {
        assert!(
            rows.contains(&(name.into(), "query".into(), false)),
            "{name}: {rows:?}"
        );
    }
    assert!(rows.contains(&("table".into(), "path".into(), true)));
    let get = params("/v1/datasets/{name}", "get");
    for name in [
        "view", "version", "last", "as_of", "where", "columns", "limit", "format",
    ] {
        assert!(
            get.contains(&(name.into(), "query".into(), false)),
            "{name}: {get:?}"
        );
    }
    let put = params("/v1/datasets/{name}", "post");
    for name in ["format", "date_key", "id_key", "version", "keep_last"] {
        assert!(
            put.contains(&(name.into(), "query".into(), false)),
            "{name}: {put:?}"
        );
    }
    let data = params("/v1/slices/data", "get");
    assert!(
        data.contains(&("slice".into(), "query".into(), true)),
        "{data:?}"
    );
    // The docs page and every asset it names come from the server itself.
    let html = s
        .http
        .get(format!("{}/docs/", s.base))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(html.contains("swagger"), "{html}");
    let mut assets = 0;
    for part in html.split(['"', '\'']) {
        if part.ends_with(".js") || part.ends_with(".css") {
            assert!(!part.starts_with("http"), "an external asset: {part}");
            let url = format!("{}/docs/{}", s.base, part.trim_start_matches("./"));
            let r = s.http.get(&url).send().await.unwrap();
            assert_eq!(r.status(), 200, "{url}");
            assert!(r.bytes().await.unwrap().len() > 100, "{url}");
            assets += 1;
        }
    }
    assert!(assets >= 2, "the page names its script and style: {html}");
    let metrics = s
        .http
        .get(format!("{}/metrics", s.base))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains(
            "tessera_http_requests_total{method=\"GET\",route=\"/query-parquet\",status=\"200\"}"
        ),
        "{metrics}"
    );
    assert!(
        metrics.contains("route=\"/query-parquet\",status=\"400\""),
        "400s are counted"
    );
    assert!(
        metrics.contains("tessera_http_request_duration_seconds_bucket"),
        "{metrics}"
    );
}

async fn hostile(s: &Server) {
    // A 10 MB query string (no HTTP client library sends one; write it by
    // hand): refused with a 4xx, and the server keeps serving.
    {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let addr = s.base.trim_start_matches("http://");
        let mut sock = tokio::net::TcpStream::connect(addr).await.unwrap();
        let head = format!(
            "GET /query-parquet?statename={}&dname=sales HTTP/1.1\r\nHost: x\r\n\r\n",
            "a".repeat(10 << 20)
        );
        // The server may answer and close before it has read everything.
        let _ = sock.write_all(head.as_bytes()).await;
        let mut buf = vec![0u8; 64];
        let n = sock.read(&mut buf).await.unwrap_or(0);
        let status = String::from_utf8_lossy(&buf[..n]).to_string();
        assert!(
            status.starts_with("HTTP/1.1 4"),
            "a 10 MB query string got '{}'",
            status.lines().next().unwrap_or("no answer")
        );
    }
    let big_name = format!("/v1/tables/{}/rows", "x".repeat(60_000));
    let r = reqwest::Client::new()
        .get(format!("{}{big_name}", s.base))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_client_error());
    let (st, v) = s.get("/v1/tables/sales%27%3B--/rows").await;
    assert_error(st, &v, 404, "no table named");
    // A client of its own: the server closes a connection whose body it
    // refused, and the shared pool must not reuse that connection.
    let r = reqwest::Client::new()
        .post(format!("{}/v1/sql", s.base))
        .json(&json!({"sql": "x".repeat(2 << 20)}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 413);
    let r = s
        .http
        .delete(format!("{}/v1/tables", s.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 405);
    let (st, _) = s
        .get("/query-parquet?statename=california&dname=sales")
        .await;
    assert_eq!(st, 200, "still serving");
}

async fn limits(s: &Server) {
    // Take every query slot: the next query gets 429 with Retry-After.
    let mut held = Vec::new();
    while let Ok(p) = s.app.query_permit() {
        held.push(p);
    }
    let r = s
        .http
        .get(format!(
            "{}/query-parquet?statename=california&dname=sales",
            s.base
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 429);
    assert_eq!(r.headers()["retry-after"], "1");
    let (st, _) = s.get("/healthz").await;
    assert_eq!(st, 200, "health is not a query");
    drop(held);
    let (st, _) = s
        .get("/query-parquet?statename=california&dname=sales")
        .await;
    assert_eq!(st, 200);
}

async fn every_endpoint(store: &str) {
    let mut config = fixture(store).await;
    config.limits.sql_row_limit = 1000;
    config.limits.max_body = 1 << 20;
    let s = Server::start(config).await;
    query_parquet_contract(&s).await;
    tables(&s).await;
    sql(&s).await;
    datasets(&s).await;
    manifests(&s).await;
    slices(&s).await;
    hostile(&s).await;
    limits(&s).await;
    service(&s).await;
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_endpoint_on_local_disk() {
    let dir = tempfile::tempdir().unwrap();
    every_endpoint(dir.path().to_str().unwrap()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_endpoint_on_s3() {
    let Some(bucket) = s3_base() else { return };
    every_endpoint(&format!("{bucket}/{}", unique("server"))).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_query_past_the_timeout_gets_504_and_the_server_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = fixture(dir.path().to_str().unwrap()).await;
    config.limits.request_timeout = std::time::Duration::from_millis(300);
    let s = Server::start(config).await;
    // 625 million pairs: far more than 300 ms of work.
    let (st, v) = s
        .sql("SELECT sum(a.id * b.sales) AS x FROM sales a, sales b")
        .await;
    assert_error(st, &v, 504, "took longer");
    let (st, _) = s
        .get("/query-parquet?statename=california&dname=sales")
        .await;
    assert_eq!(st, 200);
    s.stop().await;
}

/// After the stop signal, a client that stops reading a streamed answer
/// holds the server up for the shutdown timeout, not for ever.
#[tokio::test]
async fn shutdown_cuts_off_a_client_that_stops_reading_after_the_grace() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let dir = tempfile::tempdir().unwrap();
    let mut config = fixture(dir.path().to_str().unwrap()).await;
    let grace = std::time::Duration::from_millis(1500);
    config.limits.shutdown_timeout = grace;
    config.limits.sql_row_limit = 100_000_000;
    let s = Server::start(config).await;
    // 625 million rows as CSV: far more than the socket buffers hold.
    let body =
        json!({ "sql": "SELECT a.id, a.name, b.name AS other FROM sales a, sales b" }).to_string();
    let addr = s.base.trim_start_matches("http://").to_string();
    let mut sock = tokio::net::TcpStream::connect(&addr).await.unwrap();
    sock.write_all(
        format!(
            "POST /v1/sql?format=csv HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        )
        .as_bytes(),
    )
    .await
    .unwrap();
    let mut first = vec![0u8; 4096];
    let n = sock.read(&mut first).await.unwrap();
    assert!(
        String::from_utf8_lossy(&first[..n]).starts_with("HTTP/1.1 200"),
        "{}",
        String::from_utf8_lossy(&first[..n])
    );
    // Stop reading; ask the server to stop.
    let asked = std::time::Instant::now();
    tokio::time::timeout(grace * 8, s.stop())
        .await
        .expect("the server was still draining long after its shutdown timeout");
    let took = asked.elapsed();
    assert!(took >= grace, "cut off before the grace ended: {took:?}");
    drop(sock);
}

/// When told to stop, a connection that has not sent its request yet may
/// still send it and gets its answer (closing it at once reset requests
/// clients had already written), while new connections are refused.
#[tokio::test]
async fn stopping_answers_a_request_sent_just_after_the_signal_and_refuses_new_connections() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let dir = tempfile::tempdir().unwrap();
    let config = fixture(dir.path().to_str().unwrap()).await;
    let s = Server::start(config).await;
    let addr = s.base.trim_start_matches("http://").to_string();
    let mut early = tokio::net::TcpStream::connect(&addr).await.unwrap();
    // Let the server accept it before the signal.
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    let Server { stop, task, .. } = s;
    let _ = stop.unwrap().send(());
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    assert!(
        tokio::net::TcpStream::connect(&addr).await.is_err(),
        "a new connection was accepted after the stop signal"
    );
    early
        .write_all(format!("GET /healthz HTTP/1.1\r\nHost: {addr}\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let mut answer = Vec::new();
    early.read_to_end(&mut answer).await.unwrap();
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    tokio::time::timeout(std::time::Duration::from_secs(10), task)
        .await
        .expect("the server did not stop")
        .unwrap()
        .unwrap();
}
