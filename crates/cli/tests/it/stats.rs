//! The `flightdeck stats` output contract: field names, sign conventions,
//! exit codes and one-line errors. Values are checked against the scipy
//! fixture the stats crate is tested with.

use std::collections::BTreeSet;
use std::path::Path;

use crate::flightdeck;

fn reference() -> serde_json::Value {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("../stats/tests/fixtures/reference.json");
    serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap()
}

fn write_numbers(dir: &Path, name: &str, v: &serde_json::Value) -> std::path::PathBuf {
    let p = dir.join(name);
    let text: String = v
        .as_array()
        .unwrap()
        .iter()
        .map(|x| format!("{}\n", x.as_f64().unwrap()))
        .collect();
    std::fs::write(&p, format!("# {name}\n\n{text}")).unwrap();
    p
}

fn json(args: &[&str]) -> serde_json::Value {
    json_exiting(args, 0)
}

/// The one JSON object a command prints, checking its exit code (3 for a
/// finding such as an SRM).
fn json_exiting(args: &[&str], code: i32) -> serde_json::Value {
    let out = flightdeck().args(args).output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(code),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert_eq!(
        stdout.lines().count(),
        1,
        "exactly one JSON object: {stdout}"
    );
    serde_json::from_str(&stdout).unwrap()
}

fn keys(v: &serde_json::Value) -> BTreeSet<&str> {
    v.as_object().unwrap().keys().map(String::as_str).collect()
}

fn close(a: &serde_json::Value, b: &serde_json::Value, what: &str) {
    let (a, b) = (a.as_f64().unwrap(), b.as_f64().unwrap());
    assert!(
        (a - b).abs() <= 1e-9 * b.abs().max(1e-300),
        "{what}: {a} vs {b}"
    );
}

#[test]
fn ttest_json_matches_the_contract_and_scipy() {
    let r = reference();
    let case = r["ttest"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "unequal_variances")
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (
        write_numbers(dir.path(), "a.txt", &case["a"]),
        write_numbers(dir.path(), "b.txt", &case["b"]),
    );
    let (a, b) = (a.to_str().unwrap(), b.to_str().unwrap());
    for (flag, key) in [(None, "welch"), (Some("--equal-var"), "student")] {
        let mut args = vec!["stats", "ttest", "--a", a, "--b", b, "--json"];
        args.extend(flag);
        let v = json(&args);
        assert_eq!(
            keys(&v),
            BTreeSet::from([
                "test",
                "statistic",
                "df",
                "p_value",
                "mean_a",
                "mean_b",
                "diff",
                "ci_low",
                "ci_high",
                "alpha"
            ])
        );
        assert_eq!(v["test"], key);
        let e = &case[key];
        for f in ["statistic", "df", "p_value", "ci_low", "ci_high"] {
            close(&v[f], &e[f], &format!("{key}/{f}"));
        }
        let diff = v["mean_b"].as_f64().unwrap() - v["mean_a"].as_f64().unwrap();
        assert!(
            (v["diff"].as_f64().unwrap() - diff).abs() < 1e-12,
            "diff = mean_b - mean_a"
        );
        assert_eq!(
            v["statistic"].as_f64().unwrap().signum(),
            diff.signum(),
            "statistic has the sign of diff"
        );
        assert_eq!(v["alpha"], 0.05);
    }
}

#[test]
fn mannwhitney_json_is_u_of_b_and_rs_interval() {
    let dir = tempfile::tempdir().unwrap();
    let a = dir.path().join("a.txt");
    let b = dir.path().join("b.txt");
    std::fs::write(&a, "1\n2\n3\n4\n").unwrap();
    std::fs::write(&b, "10\n20\n30\n40\n").unwrap();
    let v = json(&[
        "stats",
        "mannwhitney",
        "--a",
        a.to_str().unwrap(),
        "--b",
        b.to_str().unwrap(),
        "--json",
    ]);
    assert_eq!(
        keys(&v),
        BTreeSet::from(["statistic", "p_value", "estimate", "ci_low", "ci_high"])
    );
    // scipy.stats.mannwhitneyu(b, a).statistic = 16; R: wilcox.test(b, a, conf.int=TRUE) gives [6, 39], 22.5.
    assert_eq!(
        (
            v["statistic"].as_f64(),
            v["ci_low"].as_f64(),
            v["ci_high"].as_f64()
        ),
        (Some(16.0), Some(6.0), Some(39.0))
    );
    assert_eq!(v["estimate"].as_f64(), Some(22.5));
}

#[test]
fn chisq_srm_power_and_proportions_match_the_references() {
    let r = reference();
    let c = r["chi_square_independence"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "two_by_two_yates")
        .unwrap();
    for yates in [false, true] {
        let mut args = vec!["stats", "chisq", "--table", "10,20;30,40", "--json"];
        if yates {
            args.push("--yates");
        }
        let v = json(&args);
        assert_eq!(keys(&v), BTreeSet::from(["statistic", "df", "p_value"]));
        if yates {
            close(&v["statistic"], &c["statistic"], "chisq yates");
            close(&v["p_value"], &c["p_value"], "chisq yates p");
        }
    }

    let s = r["sample_ratio_mismatch"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "ninety_ten_seen_as_even")
        .unwrap();
    let v = json_exiting(
        &[
            "stats",
            "srm",
            "--observed",
            "50000,50000",
            "--weights",
            "0.9,0.1",
            "--json",
        ],
        3,
    );
    assert_eq!(
        keys(&v),
        BTreeSet::from(["statistic", "df", "p_value", "mismatch"])
    );
    close(&v["statistic"], &s["statistic"], "srm statistic");
    assert_eq!(v["mismatch"], true);
    let v = json(&["stats", "srm", "--observed", "50500,49500", "--json"]);
    assert_eq!(
        v["mismatch"], false,
        "p = 0.0016 is not below the default 0.001"
    );
    let v = json_exiting(
        &[
            "stats",
            "srm",
            "--observed",
            "50500,49500",
            "--alpha",
            "0.01",
            "--json",
        ],
        3,
    );
    assert_eq!(v["mismatch"], true);

    let p = r["power_proportions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "ten_to_twelve")
        .unwrap();
    let v = json(&[
        "stats",
        "power",
        "--baseline",
        "0.10",
        "--treatment",
        "0.12",
        "--json",
    ]);
    assert_eq!(v["n_per_group"], p["n_per_group"]);
    close(
        &v["n_per_group_exact"],
        &p["n_per_group_exact"],
        "power n exact",
    );

    let t = r["power_ttest"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "medium")
        .unwrap();
    let v = json(&["stats", "power", "--effect-size", "0.5", "--json"]);
    assert_eq!(
        keys(&v),
        BTreeSet::from(["n_per_group", "n_per_group_exact"])
    );
    assert_eq!(v["n_per_group"], t["n_per_group"]);
    close(
        &v["n_per_group_exact"],
        &t["n_per_group_exact"],
        "t power n exact",
    );

    let q = r["proportions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "conversion_small_lift")
        .unwrap();
    let v = json(&[
        "stats",
        "proportions",
        "--a",
        "1000/10000",
        "--b",
        "1080/10000",
        "--json",
    ]);
    for f in ["statistic", "p_value", "ci_low", "ci_high"] {
        close(&v[f], &q[f], &format!("proportions/{f}"));
    }
}

#[test]
fn bad_input_exits_non_zero_with_one_line_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let a = dir.path().join("a.txt");
    let bad = dir.path().join("bad.txt");
    std::fs::write(&a, "1\n2\n3\n").unwrap();
    std::fs::write(&bad, "1\n2\nfour\n").unwrap();
    let (a, bad) = (a.to_str().unwrap(), bad.to_str().unwrap());
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (
            vec!["stats", "ttest", "--a", a, "--b", bad, "--json"],
            "bad.txt:3: \"four\"",
        ),
        (
            vec!["stats", "ttest", "--a", a, "--b", "/nonexistent/b.txt"],
            "/nonexistent/b.txt",
        ),
        (
            vec!["stats", "ttest", "--a", a, "--b", a, "--alpha", "1.5"],
            "alpha",
        ),
        (vec!["stats", "ttest", "--a", a], "--b"),
        (
            vec!["stats", "chisq", "--table", "1,2;3"],
            "row 2 has 1 cells",
        ),
        (vec!["stats", "chisq", "--table", "1,-2;3,4"], "-2"),
        (
            vec!["stats", "srm", "--observed", "10,20", "--weights", "1"],
            "2 arms observed but 1 weights",
        ),
        (
            vec!["stats", "proportions", "--a", "11/10", "--b", "1/10"],
            "11/10",
        ),
        (
            vec!["stats", "power", "--baseline", "0.1", "--treatment", "1.5"],
            "1.5",
        ),
        (vec!["stats", "mannwhitney", "--a", a, "--b", bad], "four"),
    ];
    for (args, needle) in cases {
        let out = flightdeck().args(&args).output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(out.stdout.is_empty(), "{args:?} printed to stdout");
        assert_eq!(
            stderr.trim_end().lines().count(),
            1,
            "{args:?}: one line, got: {stderr}"
        );
        assert!(
            stderr.contains(needle),
            "{args:?}: expected {needle:?} in {stderr}"
        );
    }
    let one = dir.path().join("one.txt");
    std::fs::write(&one, "5\n").unwrap();
    let out = flightdeck()
        .args(["stats", "ttest", "--a", one.to_str().unwrap(), "--b", a])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("--a") && stderr.contains("1 observations"),
        "{stderr}"
    );
}
