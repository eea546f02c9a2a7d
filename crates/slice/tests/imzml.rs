//! imzML slicing through the registry, property-tested over generated
//! datasets (continuous and processed, 32/64-bit arrays, zlib, spectra in
//! any .ibd order) and random plans: each slice is a standalone imzML + ibd
//! pair (a tar of two entries) that indexes again, with the same UUID, and
//! whose spectra are exactly the original's (coordinates and array bytes),
//! every spectrum in exactly one slice; bad pairs are refused.

use std::io::Read;

use proptest::prelude::*;
use tessera_slice::{Error, Registry, Strategy as Plan};
use tessera_store::{Location, PublishMode, StoreOptions};

#[derive(Debug, Clone)]
struct Dataset {
    continuous: bool,
    zlib: bool,
    /// (x, y, m/z values, intensities)
    spectra: Vec<(u32, u32, Vec<f64>, Vec<f32>)>,
    /// Write the arrays in reverse spectrum order in the .ibd.
    reversed: bool,
}

const UUID: [u8; 16] = [
    0x8a, 0x1b, 0x2c, 0x3d, 0x4e, 0x5f, 0x60, 0x71, 0x82, 0x93, 0xa4, 0xb5, 0xc6, 0xd7, 0xe8, 0xf9,
];

fn zlib(data: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::fast());
    z.write_all(data).unwrap();
    z.finish().unwrap()
}

fn bytes_f64(v: &[f64]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

fn bytes_f32(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

/// The imzML XML and the .ibd of `d`.
fn files(d: &Dataset) -> (String, Vec<u8>) {
    let mut ibd = UUID.to_vec();
    let enc = |b: Vec<u8>| if d.zlib { zlib(&b) } else { b };
    // Array bytes per spectrum: (mz offset, mz len, mz enc) (int offset, …)
    let mut arrays = vec![[(0u64, 0u64, 0u64); 2]; d.spectra.len()];
    let shared_mz = if d.continuous {
        let b = enc(bytes_f64(
            &d.spectra.first().map(|s| s.2.clone()).unwrap_or_default(),
        ));
        let at = ibd.len() as u64;
        ibd.extend_from_slice(&b);
        Some((
            at,
            d.spectra.first().map_or(0, |s| s.2.len()) as u64,
            b.len() as u64,
        ))
    } else {
        None
    };
    let order: Vec<usize> = if d.reversed {
        (0..d.spectra.len()).rev().collect()
    } else {
        (0..d.spectra.len()).collect()
    };
    for i in order {
        let s = &d.spectra[i];
        arrays[i][0] = match shared_mz {
            Some(m) => m,
            None => {
                let b = enc(bytes_f64(&s.2));
                let at = ibd.len() as u64;
                ibd.extend_from_slice(&b);
                (at, s.2.len() as u64, b.len() as u64)
            }
        };
        let b = enc(bytes_f32(&s.3));
        let at = ibd.len() as u64;
        ibd.extend_from_slice(&b);
        arrays[i][1] = (at, s.3.len() as u64, b.len() as u64);
    }
    let comp = if d.zlib {
        r#"<cvParam cvRef="MS" accession="MS:1000574" name="zlib compression" value=""/>"#
    } else {
        r#"<cvParam cvRef="MS" accession="MS:1000576" name="no compression" value=""/>"#
    };
    let mode = if d.continuous {
        r#"<cvParam cvRef="IMS" accession="IMS:1000030" name="continuous" value=""/>"#
    } else {
        r#"<cvParam cvRef="IMS" accession="IMS:1000031" name="processed" value=""/>"#
    };
    let uuid: String = UUID.iter().map(|b| format!("{b:02X}")).collect();
    let mut x = format!(
        r#"<?xml version="1.0" encoding="ISO-8859-1"?>
<mzML xmlns="http://psi.hupo.org/ms/mzml" version="1.1">
  <fileDescription>
    <fileContent>
      <cvParam cvRef="MS" accession="MS:1000579" name="MS1 spectrum" value=""/>
      <cvParam cvRef="IMS" accession="IMS:1000080" name="universally unique identifier" value="{{{uuid}}}"/>
      <cvParam cvRef="IMS" accession="IMS:1000091" name="ibd SHA-1" value="0000000000000000000000000000000000000000"/>
      {mode}
    </fileContent>
  </fileDescription>
  <referenceableParamGroupList count="2">
    <referenceableParamGroup id="mzArray">
      {comp}
      <cvParam cvRef="MS" accession="MS:1000514" name="m/z array" value="" unitCvRef="MS" unitAccession="MS:1000040" unitName="m/z"/>
      <cvParam cvRef="MS" accession="MS:1000523" name="64-bit float" value=""/>
      <cvParam cvRef="IMS" accession="IMS:1000101" name="external data" value="true"/>
    </referenceableParamGroup>
    <referenceableParamGroup id="intensityArray">
      {comp}
      <cvParam cvRef="MS" accession="MS:1000515" name="intensity array" value=""/>
      <cvParam cvRef="MS" accession="MS:1000521" name="32-bit float" value=""/>
      <cvParam cvRef="IMS" accession="IMS:1000101" name="external data" value="true"/>
    </referenceableParamGroup>
  </referenceableParamGroupList>
  <run defaultInstrumentConfigurationRef="IC1" id="Experiment01">
    <spectrumList count="{}" defaultDataProcessingRef="export">
"#,
        d.spectra.len()
    );
    for (i, s) in d.spectra.iter().enumerate() {
        x.push_str(&format!(
            r#"      <spectrum defaultArrayLength="0" id="Scan={}" index="{i}">
        <scanList count="1">
          <scan instrumentConfigurationRef="IC1">
            <cvParam cvRef="IMS" accession="IMS:1000050" name="position x" value="{}"/>
            <cvParam cvRef="IMS" accession="IMS:1000051" name="position y" value="{}"/>
          </scan>
        </scanList>
        <binaryDataArrayList count="2">
"#,
            i + 1,
            s.0,
            s.1
        ));
        for (k, group) in ["mzArray", "intensityArray"].iter().enumerate() {
            let (at, len, enc) = arrays[i][k];
            x.push_str(&format!(
                r#"          <binaryDataArray encodedLength="0">
            <referenceableParamGroupRef ref="{group}"/>
            <cvParam cvRef="IMS" accession="IMS:1000103" name="external array length" value="{len}"/>
            <cvParam cvRef="IMS" accession="IMS:1000104" name="external encoded length" value="{enc}"/>
            <cvParam cvRef="IMS" accession="IMS:1000102" name="external offset" value="{at}"/>
            <binary/>
          </binaryDataArray>
"#
            ));
        }
        x.push_str("        </binaryDataArrayList>\n      </spectrum>\n");
    }
    x.push_str("    </spectrumList>\n  </run>\n</mzML>\n");
    (x, ibd)
}

async fn put(url: &str, data: Vec<u8>) -> Location {
    let obj = Location::open(url, &StoreOptions::default()).await.unwrap();
    obj.publish(data, PublishMode::Overwrite).await.unwrap();
    obj
}

/// Each spectrum: coordinates and its arrays' bytes, read through a fresh
/// index of the pair (the format's own parser) and the .ibd.
async fn spectra_of(xml: Vec<u8>, ibd: Vec<u8>, name: &str) -> Vec<(u32, u32, Vec<Vec<u8>>)> {
    let obj = put(&format!("memory://imzml-props/{name}.imzML"), xml.clone()).await;
    put(&format!("memory://imzml-props/{name}.ibd"), ibd.clone()).await;
    let formats = Registry::builtin();
    let index = formats.index(&obj).await.expect("index");
    let spectra = index.detail["spectra"].as_array().unwrap();
    spectra
        .iter()
        .map(|s| {
            let at = s["at"].as_array().unwrap();
            let arrays = s["arrays"]
                .as_array()
                .unwrap()
                .iter()
                .map(|a| {
                    let o = a["offset"].as_u64().unwrap() as usize;
                    let e = a["encoded"].as_u64().unwrap() as usize;
                    ibd[o..o + e].to_vec()
                })
                .collect();
            (
                at[0].as_u64().unwrap() as u32,
                at[1].as_u64().unwrap() as u32,
                arrays,
            )
        })
        .collect()
}

fn untar(bytes: &[u8]) -> Vec<(String, Vec<u8>)> {
    let mut a = tar::Archive::new(bytes);
    a.entries()
        .unwrap()
        .map(|e| {
            let mut e = e.unwrap();
            let name = e.path().unwrap().display().to_string();
            let mut data = Vec::new();
            e.read_to_end(&mut data).unwrap();
            (name, data)
        })
        .collect()
}

async fn check(d: &Dataset, plan: Plan, name: &str) {
    let (xml, ibd) = files(d);
    let original = spectra_of(xml.clone().into_bytes(), ibd.clone(), name).await;
    assert_eq!(original.len(), d.spectra.len());
    let obj = Location::open(
        &format!("memory://imzml-props/{name}.imzML"),
        &StoreOptions::default(),
    )
    .await
    .unwrap();
    let formats = Registry::builtin();
    let index = formats.index(&obj).await.unwrap();
    let slices = formats.plan(&index, plan).unwrap();
    let mut seen = Vec::new();
    for s in &slices {
        let out = formats.fetch(s, &obj).await.expect("fetch");
        let files = untar(&out);
        assert_eq!(files.len(), 2);
        assert!(
            files[0].0.ends_with(&format!(".slice{}.imzML", s.slice))
                && files[1].0.ends_with(".ibd")
        );
        assert_eq!(&files[1].1[..16], &UUID, "the UUID is kept");
        let text = String::from_utf8(files[0].1.clone()).unwrap();
        assert!(
            !text.contains("IMS:1000091"),
            "the whole file's checksum is dropped"
        );
        assert!(text.contains(&format!("<spectrumList count=\"{}\"", s.record_count)));
        let got = spectra_of(
            files[0].1.clone(),
            files[1].1.clone(),
            &format!("{name}-s{}", s.slice),
        )
        .await;
        assert_eq!(got.len() as u64, s.record_count);
        if d.continuous && got.len() > 1 {
            // The shared m/z array is stored once.
            let expect = 16 + got[0].2[0].len() + got.iter().map(|g| g.2[1].len()).sum::<usize>();
            assert_eq!(files[1].1.len(), expect, "one m/z array for all spectra");
        }
        seen.extend(got);
    }
    let mut want = original.clone();
    want.sort();
    seen.sort();
    assert_eq!(seen, want, "every spectrum in exactly one slice, unchanged");
}

fn dataset() -> impl Strategy<Value = Dataset> {
    (
        any::<bool>(),
        any::<bool>(),
        any::<bool>(),
        prop::collection::vec((0u32..12, 0u32..9, 1usize..20), 0..60),
    )
        .prop_map(|(continuous, zlib, reversed, specs)| {
            let mz_len = specs.first().map_or(5, |s| s.2);
            Dataset {
                continuous,
                zlib,
                reversed,
                spectra: specs
                    .iter()
                    .enumerate()
                    .map(|(i, &(x, y, n))| {
                        let n = if continuous { mz_len } else { n };
                        let mz: Vec<f64> = (0..n)
                            .map(|k| {
                                100.0 + k as f64 * 0.5 + if continuous { 0.0 } else { i as f64 }
                            })
                            .collect();
                        let it: Vec<f32> = (0..n).map(|k| (i * 31 + k) as f32).collect();
                        (x + 1, y + 1, mz, it)
                    })
                    .collect(),
            }
        })
}

fn plan() -> impl Strategy<Value = Plan> {
    prop_oneof![
        (1usize..10).prop_map(Plan::Count),
        (1u64..20).prop_map(Plan::Records),
        (1u64..3000).prop_map(Plan::Bytes),
        (1u32..4, 1u32..4).prop_map(|(columns, rows)| Plan::Grid { columns, rows }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 32, ..ProptestConfig::default() })]

    #[test]
    fn slices_are_standalone_pairs_of_the_spectra(d in dataset(), p in plan()) {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(check(&d, p, "ds"));
    }
}

#[tokio::test]
async fn bad_pairs_are_refused() {
    let d = Dataset {
        continuous: false,
        zlib: false,
        reversed: false,
        spectra: (0..5)
            .map(|i| (i + 1, 1, vec![1.0, 2.0], vec![3.0, 4.0]))
            .collect(),
    };
    let (xml, ibd) = files(&d);
    let formats = Registry::builtin();
    // No .ibd beside it.
    let obj = put("memory://imzml-bad/alone.imzML", xml.clone().into_bytes()).await;
    let e = formats.index(&obj).await.unwrap_err();
    assert!(
        matches!(&e, Error::NotFound { object } if object.contains("alone.ibd")),
        "{e}"
    );
    // A different UUID.
    let obj = put("memory://imzml-bad/uuid.imzML", xml.clone().into_bytes()).await;
    let mut other = ibd.clone();
    other[0] ^= 0xff;
    put("memory://imzml-bad/uuid.ibd", other).await;
    let e = formats.index(&obj).await.unwrap_err();
    assert!(
        e.to_string().contains("UUID") && e.to_string().contains("uuid.ibd"),
        "{e}"
    );
    // Offsets past the end of the .ibd.
    let obj = put("memory://imzml-bad/short.imzML", xml.clone().into_bytes()).await;
    put(
        "memory://imzml-bad/short.ibd",
        ibd[..ibd.len() - 4].to_vec(),
    )
    .await;
    let e = formats.index(&obj).await.unwrap_err();
    assert!(e.to_string().contains("outside the .ibd"), "{e}");
    // Not XML.
    let obj = put(
        "memory://imzml-bad/junk.imzML",
        b"<mzML><spectrumList count='1'><spectrum".to_vec(),
    )
    .await;
    put("memory://imzml-bad/junk.ibd", ibd.clone()).await;
    let e = formats.index(&obj).await.unwrap_err();
    assert!(matches!(&e, Error::InvalidFile { .. }), "{e}");
    // A second spectrum list, or a spectrum outside the list: every slice
    // would copy it unchanged (found by fuzzing).
    let list = xml.find("<spectrumList").unwrap();
    let end = xml.find("</spectrumList>").unwrap() + "</spectrumList>".len();
    let first = xml.find("<spectrum ").unwrap();
    let first_end = xml.find("</spectrum>").unwrap() + "</spectrum>".len();
    for (name, bad, what) in [
        (
            "twice",
            format!("{}{}{}", &xml[..end], &xml[list..end], &xml[end..]),
            "a second spectrumList",
        ),
        (
            "outside",
            format!("{}{}{}", &xml[..list], &xml[first..first_end], &xml[list..]),
            "a spectrum outside the spectrumList",
        ),
    ] {
        let obj = put(
            &format!("memory://imzml-bad/{name}.imzML"),
            bad.into_bytes(),
        )
        .await;
        put(&format!("memory://imzml-bad/{name}.ibd"), ibd.clone()).await;
        let e = formats.index(&obj).await.unwrap_err();
        assert!(
            matches!(&e, Error::InvalidFile { .. }) && e.to_string().contains(what),
            "{name}: {e}"
        );
    }
    // The .ibd changed after indexing.
    let obj = put("memory://imzml-bad/ok.imzML", xml.into_bytes()).await;
    let ibd_loc = put("memory://imzml-bad/ok.ibd", ibd.clone()).await;
    let index = formats.index(&obj).await.unwrap();
    let slices = formats.plan(&index, Plan::Count(2)).unwrap();
    let mut changed = ibd;
    changed[20] ^= 1;
    ibd_loc
        .publish(changed, PublishMode::Overwrite)
        .await
        .unwrap();
    let e = formats.fetch(&slices[0], &obj).await.unwrap_err();
    assert!(matches!(&e, Error::StaleIndex { .. }), "{e}");
}

#[tokio::test]
async fn spectra_as_arrow_decode_every_array() {
    use arrow_array::cast::AsArray;
    use arrow_array::types::{Float64Type, UInt32Type};
    for (continuous, zlib) in [(false, true), (true, false), (false, false)] {
        let d = Dataset {
            continuous,
            zlib,
            reversed: true,
            spectra: (0..7u32)
                .map(|i| {
                    let n = if continuous { 4 } else { 2 + i as usize };
                    let mz: Vec<f64> = (0..n)
                        .map(|k| 100.25 + k as f64 + if continuous { 0.0 } else { f64::from(i) })
                        .collect();
                    let it: Vec<f32> = (0..n).map(|k| (i as usize * 10 + k) as f32 + 0.5).collect();
                    (i % 3 + 1, i / 3 + 1, mz, it)
                })
                .collect(),
        };
        let (xml, ibd) = files(&d);
        let name = format!("arrow-{continuous}-{zlib}");
        let obj = put(
            &format!("memory://imzml-arrow/{name}.imzML"),
            xml.into_bytes(),
        )
        .await;
        put(&format!("memory://imzml-arrow/{name}.ibd"), ibd).await;
        let formats = Registry::builtin();
        let index = formats.index(&obj).await.unwrap();
        let mut rows = Vec::new();
        for s in formats.plan(&index, Plan::Count(3)).unwrap() {
            let out = formats.fetch(&s, &obj).await.unwrap();
            let batch = tessera_slice::spectra_to_arrow(&out, "slice").unwrap();
            let x = batch.column(0).as_primitive::<UInt32Type>();
            let y = batch.column(1).as_primitive::<UInt32Type>();
            let mz = batch.column(3).as_list::<i32>();
            let it = batch.column(4).as_list::<i32>();
            for r in 0..batch.num_rows() {
                let m: Vec<f64> = mz.value(r).as_primitive::<Float64Type>().values().to_vec();
                let v: Vec<f64> = it.value(r).as_primitive::<Float64Type>().values().to_vec();
                rows.push((x.value(r), y.value(r), m, v));
            }
        }
        let want: Vec<(u32, u32, Vec<f64>, Vec<f64>)> = d
            .spectra
            .iter()
            .map(|s| {
                (
                    s.0,
                    s.1,
                    s.2.clone(),
                    s.3.iter().map(|v| f64::from(*v)).collect(),
                )
            })
            .collect();
        assert_eq!(rows, want, "{name}");
    }
    let e = tessera_slice::spectra_to_arrow(b"not a tar at all", "junk").unwrap_err();
    assert!(e.to_string().contains("junk"), "{e}");
}
