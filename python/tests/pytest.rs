//! Runs the Python package's tests (`python/tests/test_*.py`) with pytest,
//! against the module this build made: the package folder and the
//! compiled `_tessera` are staged together and put on `PYTHONPATH`.
//!
//! Needs a Python with pyarrow, pandas, pytest and dask
//! (`TESSERA_TEST_PYTHON`, made by `scripts/test.sh`); skipped without one
//! unless `TESSERA_REQUIRE_PYTHON=1`. Extra pytest arguments can be given in
//! `TESSERA_PYTEST_ARGS` (e.g. `-k datasets -x`).

use std::path::{Path, PathBuf};
use std::process::Command;

fn copy_package(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let p = e.path();
        let name = e.file_name();
        if p.is_dir() {
            if name != "__pycache__" {
                copy_package(&p, &to.join(&name));
            }
        } else {
            std::fs::copy(&p, to.join(&name)).unwrap();
        }
    }
}

/// The module built with this test: `lib_tessera.so` beside the test
/// binary (`target/<profile>/deps`) or one folder up.
fn built_module() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let deps = exe.parent().unwrap();
    let name = if cfg!(target_os = "macos") {
        "lib_tessera.dylib"
    } else {
        "lib_tessera.so"
    };
    [deps.join(name), deps.parent().unwrap().join(name)]
        .into_iter()
        .find(|p| p.exists())
        .unwrap_or_else(|| panic!("the module {name} was not built beside {}", exe.display()))
}

#[test]
fn python_package() {
    let Some(python) = tessera_test_support::python() else {
        eprintln!("skipped: no TESSERA_TEST_PYTHON");
        return;
    };
    let here = Path::new(env!("CARGO_MANIFEST_DIR"));
    let module = built_module();
    let profile_dir = module
        .ancestors()
        .find(|p| p.join("deps").is_dir())
        .unwrap()
        .to_path_buf();
    let stage = profile_dir.join("python-stage");
    let _ = std::fs::remove_dir_all(&stage);
    copy_package(&here.join("tessera"), &stage.join("tessera"));
    std::fs::copy(&module, stage.join("tessera").join("_tessera.abi3.so")).unwrap();

    // Run from the staging folder: `python -m pytest` puts the working
    // folder first on the path, and it must hold the built package, not
    // the sources (which lack the native module).
    let mut cmd = Command::new(&python);
    cmd.current_dir(&stage)
        .args(["-m", "pytest", "-q", "-p", "no:cacheprovider", "-rs"])
        .arg(here.join("tests"))
        .env("PYTHONPATH", &stage)
        .env("PYTHONDONTWRITEBYTECODE", "1");
    if let Ok(extra) = std::env::var("TESSERA_PYTEST_ARGS") {
        cmd.args(extra.split_whitespace());
    }
    let bin = profile_dir.join("tessera");
    if bin.exists() && std::env::var_os("TESSERA_BIN").is_none() {
        cmd.env("TESSERA_BIN", &bin);
    }
    let status = cmd.status().expect("cannot run pytest");
    assert!(status.success(), "pytest failed: {status}");
}
