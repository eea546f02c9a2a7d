//! The toy format works through tessera's registry like a built-in one:
//! slices of any plan concatenate to the object's records; the registry
//! without it refuses the format; the index and slices are the common
//! JSON documents and survive a save and reload.

use proptest::prelude::*;
use slice_format_toy::{decode, encode, ToyFormat};
use tessera_slice::{AnyIndex, Error, Registry, Strategy as Plan};
use tessera_store::{Location, PublishMode, StoreOptions};

async fn put(url: &str, data: Vec<u8>) -> Location {
    let obj = Location::open(url, &StoreOptions::default()).await.unwrap();
    obj.publish(data, PublishMode::Overwrite).await.unwrap();
    obj
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn slices_concatenate_to_the_records(
        records in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..40), 0..300),
        spacing in 1u64..20,
        plan in prop_oneof![(1usize..30).prop_map(Plan::Count), (1u64..100).prop_map(Plan::Records)],
    ) {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(async {
            let obj = put("memory://toy-props/data.toy", encode(&records)).await;
            let formats = Registry::builtin().with_format(ToyFormat::default().with_spacing(spacing));
            let index = formats.index(&obj).await.unwrap();
            assert_eq!(index.records, records.len() as u64);
            // Through JSON and back, as a worker receives it.
            let index = AnyIndex::from_json(&serde_json::to_vec(&index).unwrap(), "idx").unwrap();
            let slices = formats.plan(&index, plan).unwrap();
            let mut all = Vec::new();
            for s in &slices {
                let got = decode(&formats.fetch(s, &obj).await.unwrap()).expect("a toy file");
                assert_eq!(got.len() as u64, s.record_count);
                all.extend(got);
            }
            assert_eq!(all, records);
        });
    }
}

#[tokio::test]
async fn only_a_registry_with_the_plugin_knows_the_format() {
    let obj = put("memory://toy-reg/a.toy", encode(&[b"x".to_vec()])).await;
    let e = Registry::builtin().index(&obj).await.unwrap_err();
    assert!(matches!(e, Error::UnknownFormat { .. }), "{e}");
    let e = Registry::builtin()
        .index(&obj)
        .with_format("toy")
        .await
        .unwrap_err();
    assert!(
        matches!(&e, Error::NoSuchFormat { format, .. } if format == "toy"),
        "{e}"
    );
    let formats = Registry::builtin().with_format(ToyFormat::default());
    assert!(formats.names().contains(&"toy") && formats.names().contains(&"laz"));
    // Bad input is the plugin's own typed error.
    let bad = put(
        "memory://toy-reg/bad.toy",
        b"TOY1\x05\0\0\0\x09\0ab".to_vec(),
    )
    .await;
    let e = formats.index(&bad).await.unwrap_err();
    assert!(
        matches!(&e, Error::InvalidFile { format, .. } if format == "toy"),
        "{e}"
    );
}
