//! What a pack will do: the inputs it reads, the existing files of the table
//! it continues, and the schema of the rows.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use arrow::datatypes::{DataType, Schema, SchemaRef};
use tessera_formats::{infer_schema, lossless, merge_inferred, nullable, FileFormat, RecordLayout};
use tessera_store::{Location, ObjectMeta, ObjectPath};
use tokio::runtime::Handle;

use crate::error::{Error, Result};
use crate::journal::{InputRecord, PackTarget, RunRecord};
use crate::naming;
use crate::pack::Pack;
use crate::run::Settings;

/// Bytes read from the start of a file to infer its schema.
pub(crate) const INFER_BYTES: usize = 1 << 20;

/// An input file to pack.
#[derive(Debug, Clone)]
pub struct PlannedInput {
    /// The object.
    pub record: InputRecord,
    /// Its format.
    pub format: FileFormat,
    /// Its key in the input store.
    pub(crate) path: ObjectPath,
}

/// An existing file of the table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExistingFile {
    /// Path relative to the table folder.
    pub path: String,
    /// Its number.
    pub n: u64,
    /// Its size in bytes.
    pub size: u64,
}

/// What a pack will do.
#[derive(Debug, Clone)]
pub struct PackPlan {
    /// The table folder.
    pub table_url: String,
    /// The output format.
    pub format: FileFormat,
    /// Where the rows go (the key of the packed-inputs memory).
    pub target: PackTarget,
    /// Files to read, in order.
    pub inputs: Vec<PlannedInput>,
    /// Inputs skipped because a previous pack put them into the same target
    /// (same URL and ETag).
    pub already_packed: Vec<String>,
    /// Inputs packed now that earlier packs put into other targets: the URL
    /// and where it went before.
    pub packed_elsewhere: Vec<(String, PackTarget)>,
    /// Bytes of the inputs.
    pub input_bytes: u64,
    /// The folder written (relative to the table folder; empty for the table
    /// folder itself). With a split by column, the folders below it depend
    /// on the data.
    pub folder: String,
    /// The existing file that will be rewritten with new rows appended.
    pub rewrite: Option<ExistingFile>,
    /// The number of the first new file.
    pub first_new: u64,
    /// The schema of the rows.
    pub schema: SchemaRef,
}

/// The files of one folder of the table, of this series.
pub(crate) struct Folder {
    /// Relative to the table folder, with a trailing `/` (or empty).
    pub(crate) rel: String,
    /// Files of the series, by number.
    pub(crate) files: Vec<ExistingFile>,
}

impl Settings {
    /// List a folder of the table: the files of this series, checked. `ext`
    /// is the format the folder must hold (`None`: the first file's).
    pub(crate) fn scan_folder(
        &self,
        table_dir: &Location,
        rel: &str,
        ext: &mut Option<String>,
        rt: &Handle,
    ) -> Result<Folder> {
        let loc = if rel.is_empty() {
            table_dir.clone()
        } else {
            table_dir.join(rel.trim_end_matches('/'))?
        };
        let (objs, _) = rt.block_on(loc.list_dir())?;
        let mut files = Vec::new();
        for o in objs {
            let name = o.location.filename().unwrap_or_default().to_string();
            if naming::hidden(&name) {
                continue;
            }
            let url = loc.url_of(&o.location);
            let parsed =
                naming::parse(&self.table, &name).map_err(|reason| Error::ForeignFile {
                    url: url.clone(),
                    table: self.table.clone(),
                    reason,
                })?;
            match ext {
                Some(e) if *e != parsed.ext => {
                    return Err(Error::FormatMismatch {
                        url,
                        found: parsed.ext,
                        expected: e.clone(),
                    })
                }
                Some(_) => {}
                None => *ext = Some(parsed.ext.clone()),
            }
            if parsed.suffix == self.suffix {
                files.push(ExistingFile {
                    path: format!("{rel}{name}"),
                    n: parsed.n,
                    size: o.size,
                });
            }
        }
        files.sort_by_key(|f| f.n);
        Ok(Folder {
            rel: rel.to_string(),
            files,
        })
    }
}

impl Pack {
    /// Plan against the committed runs `runs`.
    pub(crate) fn plan_with(&self, runs: &[RunRecord], rt: &Handle) -> Result<PackPlan> {
        let s = &self.settings;
        let table_dir = s.table_dir()?;
        let in_dir = self.input.join(&s.table)?;
        let (a, b) = (
            format!("{}/", in_dir.url()),
            format!("{}/", table_dir.url()),
        );
        if a.starts_with(&b) || b.starts_with(&a) {
            return Err(Error::InputOverlapsOutput {
                input: in_dir.url(),
                output: table_dir.url(),
            });
        }
        let format = match s.output_format {
            Some(f) => f,
            None => FileFormat::from_extension("snappy.parquet")?,
        };
        let mut inputs = self.list_inputs(&in_dir, rt)?;
        // The packed-inputs memory is kept per target: packing the same
        // inputs into another partition is not a re-run.
        let here = self.target();
        let mut consumed: HashSet<String> = HashSet::new();
        let mut elsewhere: HashMap<String, PackTarget> = HashMap::new();
        for r in runs {
            for i in &r.inputs {
                match &r.target {
                    Some(t) if *t != here => {
                        elsewhere.entry(i.key()).or_insert_with(|| t.clone());
                    }
                    _ => {
                        consumed.insert(i.key());
                    }
                }
            }
        }
        let mut already_packed = Vec::new();
        if !self.force {
            inputs.retain(|i| {
                let done = consumed.contains(&i.record.key());
                if done {
                    already_packed.push(i.record.url.clone());
                }
                !done
            });
        }
        let packed_elsewhere: Vec<(String, PackTarget)> = inputs
            .iter()
            .filter_map(|i| {
                elsewhere
                    .get(&i.record.key())
                    .map(|t| (i.record.url.clone(), t.clone()))
            })
            .collect();
        let mut ext = Some(format.extension().to_string());
        let folder = s.scan_folder(&table_dir, &s.static_rel(), &mut ext, rt)?;
        let latest = folder.files.last().cloned();
        let rewrite = latest.clone().filter(|f| s.partial(f.size));
        let first_new = latest.as_ref().map(|l| l.n + 1).unwrap_or(0);
        let schema = self.table_schema(&inputs, &table_dir, latest.as_ref(), format, rt)?;
        let input_bytes = inputs.iter().map(|i| i.record.size).sum();
        Ok(PackPlan {
            table_url: table_dir.url(),
            format,
            target: here,
            inputs,
            already_packed,
            packed_elsewhere,
            input_bytes,
            folder: folder.rel,
            rewrite,
            first_new,
            schema,
        })
    }

    /// The input files under `in_dir`, of one format.
    fn list_inputs(&self, in_dir: &Location, rt: &Handle) -> Result<Vec<PlannedInput>> {
        let objs: Vec<ObjectMeta> = rt.block_on(in_dir.list_all(16))?;
        let base_len = in_dir.path().as_ref().len();
        let mut inputs = Vec::new();
        let mut layouts: HashMap<RecordLayout, String> = HashMap::new();
        for o in objs {
            let key = o.location.as_ref();
            let rel = key.get(base_len..).unwrap_or("").trim_start_matches('/');
            if rel.split('/').any(naming::hidden) {
                continue;
            }
            let url = in_dir.url_of(&o.location);
            let name = o.location.filename().unwrap_or_default();
            let format = match (self.input_format, FileFormat::from_name(name)) {
                (Some(sel), Some(f)) if sel.extension() == f.extension() => f,
                (Some(_), _) => continue,
                (None, Some(f)) => f,
                (None, None) => {
                    return Err(Error::UnknownInputFormat {
                        url,
                        expected: FileFormat::names().to_string(),
                    })
                }
            };
            layouts.entry(format.layout).or_insert_with(|| url.clone());
            inputs.push(PlannedInput {
                record: InputRecord {
                    url,
                    etag: o.e_tag.clone(),
                    size: o.size,
                },
                format,
                path: o.location.clone(),
            });
        }
        if layouts.len() > 1 {
            let mut formats: Vec<String> = inputs
                .iter()
                .map(|i| i.format.extension().to_string())
                .collect::<HashSet<_>>()
                .into_iter()
                .collect();
            formats.sort();
            return Err(Error::MixedInputs {
                url: in_dir.url(),
                formats,
            });
        }
        if inputs.is_empty() {
            return Err(Error::NoInput { url: in_dir.url() });
        }
        Ok(inputs)
    }

    /// The schema of the rows: declared, else the existing table's, else
    /// inferred from the inputs. Conflicts with the existing file are errors
    /// naming the columns.
    fn table_schema(
        &self,
        inputs: &[PlannedInput],
        table_dir: &Location,
        latest: Option<&ExistingFile>,
        format: FileFormat,
        rt: &Handle,
    ) -> Result<SchemaRef> {
        let inferred = self.infer_inputs(inputs, rt)?;
        let existing: Option<Schema> = match latest {
            Some(l) => {
                let loc = table_dir.join(&l.path)?;
                infer_schema(&loc, format, INFER_BYTES, rt)?
            }
            None => None,
        };
        let mut schema: Schema = if let Some(declared) = &self.schema {
            // Declared columns take their declared types; the others are inferred.
            let mut all: Vec<&Schema> = existing.iter().collect();
            all.extend(inferred.iter().map(|(_, s)| s));
            let merged = nullable(&merge_inferred(all));
            let mut fields: Vec<arrow::datatypes::FieldRef> = merged
                .fields()
                .iter()
                .map(|f| match declared.field_with_name(f.name()) {
                    Ok(d) => Arc::new(d.clone()),
                    Err(_) => f.clone(),
                })
                .collect();
            for d in declared.fields() {
                if merged.field_with_name(d.name()).is_err() {
                    fields.push(d.clone());
                }
            }
            Schema::new(fields)
        } else if let (Some(e), RecordLayout::Parquet) = (&existing, format.layout) {
            for (url, s) in &inferred {
                let text = FileFormat::from_name(url).is_some_and(|f| f.is_text());
                let typed = Schema::new(
                    s.fields()
                        .iter()
                        .filter(|f| {
                            !(text && matches!(f.data_type(), DataType::Utf8 | DataType::Null))
                        })
                        .cloned()
                        .collect::<Vec<_>>(),
                );
                check_fits(e, &typed, url)?;
            }
            e.clone()
        } else {
            let mut all: Vec<&Schema> = existing.iter().collect();
            all.extend(inferred.iter().map(|(_, s)| s));
            nullable(&merge_inferred(all)).as_ref().clone()
        };
        if let Some(c) = &self.partition_by {
            if schema.field_with_name(c).is_err() && !inferred.is_empty() {
                return Err(Error::NoSuchColumn {
                    column: c.clone(),
                    columns: schema.fields().iter().map(|f| f.name().clone()).collect(),
                });
            }
        }
        if schema.fields().is_empty() {
            // Only empty inputs: nothing to learn; any schema will do.
            schema = Schema::empty();
        }
        Ok(Arc::new(schema))
    }

    /// The schema of each input (empty inputs have none), inferred on up to
    /// eight threads.
    fn infer_inputs(&self, inputs: &[PlannedInput], rt: &Handle) -> Result<Vec<(String, Schema)>> {
        std::thread::scope(|s| {
            let handles: Vec<_> = inputs
                .chunks(inputs.len().div_ceil(8).max(1))
                .map(|part| {
                    s.spawn(move || {
                        part.iter()
                            .map(|i| {
                                let s = infer_schema(&self.input_at(i), i.format, INFER_BYTES, rt)?;
                                Ok(s.map(|s| (i.record.url.clone(), s)))
                            })
                            .collect::<Result<Vec<_>>>()
                    })
                })
                .collect();
            let mut all = Vec::new();
            for h in handles {
                let part = h
                    .join()
                    .map_err(|_| Error::Internal("schema inference panicked".to_string()))??;
                all.extend(part.into_iter().flatten());
            }
            Ok(all)
        })
    }

    /// Where an input is.
    pub(crate) fn input_at(&self, i: &PlannedInput) -> Location {
        self.input.with_path(i.path.clone())
    }
}

/// Refuse an input whose columns do not fit the existing table: a column
/// the table lacks, a type that does not convert losslessly, a required
/// column missing.
fn check_fits(table: &Schema, incoming: &Schema, object: &str) -> Result<()> {
    let mismatch = |column: &str, expected: Option<&DataType>, found: Option<&DataType>| {
        Error::SchemaMismatch {
            object: object.to_string(),
            column: column.to_string(),
            expected: expected.cloned(),
            found: found.cloned(),
        }
    };
    for f in incoming.fields() {
        match table.field_with_name(f.name()) {
            Err(_) => return Err(mismatch(f.name(), None, Some(f.data_type()))),
            Ok(t) if !lossless(f.data_type(), t.data_type()) => {
                return Err(mismatch(f.name(), Some(t.data_type()), Some(f.data_type())))
            }
            Ok(_) => {}
        }
    }
    for t in table.fields() {
        if incoming.field_with_name(t.name()).is_err() && !t.is_nullable() {
            return Err(mismatch(t.name(), Some(t.data_type()), None));
        }
    }
    Ok(())
}
