//! `keygate config check FILE`: a good file passes with a summary of what it sets; a bad
//! one fails naming the key at fault (and its line, where the file's syntax is wrong).

use crate::harness::TestEnv;

fn check(env: &TestEnv, text: &str) -> crate::harness::CliOutput {
    let file = env.data_dir.path().join("keygate.toml");
    std::fs::write(&file, text).expect("write the settings file");
    env.run(&["config", "check", file.to_str().expect("utf-8 path")])
}

#[test]
fn a_good_file_passes_with_a_summary() {
    let env = TestEnv::new();
    let good = "demo_upstream = false\nlog_format = \"json\"\n\n[[listeners]]\naddr = \"0.0.0.0:8080\"\nregion = \"ap-southeast-1\"\n\n\
                [[upstreams]]\nname = \"model-studio\"\nopenai_base_url = \"https://dashscope-intl.aliyuncs.com/compatible-mode/v1\"\nmodels = [\"qwen-plus\"]\n";
    let passed = check(&env, good).success();
    assert!(passed.stdout.contains("keygate.toml: valid"), "{}", passed.stdout);
    for line in ["listeners: 0.0.0.0:8080 ap-southeast-1", "demo models: off", "upstreams: model-studio", "log format: json"] {
        assert!(passed.stdout.contains(line), "no `{line}` in:\n{}", passed.stdout);
    }
    // The README's production snippet is such a file, and turns the demo models off.
    let snippet = include_str!("../../README.md")
        .split("`keygate config check keygate.toml` checks it first")
        .nth(1)
        .and_then(|rest| rest.split("```toml\n").nth(1))
        .and_then(|rest| rest.split("```").next())
        .expect("the README's production snippet");
    assert!(check(&env, snippet).success().stdout.contains("demo models: off"));
}

#[test]
fn a_bad_file_fails_naming_the_key_and_its_line() {
    let env = TestEnv::new();
    let misspelt = check(&env, "demo_upstream = false\n\nidle_timeout_secnds = 5\n").failure();
    assert!(misspelt.stderr.contains("is not a valid keygate settings file"), "{}", misspelt.stderr);
    assert!(misspelt.stderr.contains("line 3") && misspelt.stderr.contains("unknown field `idle_timeout_secnds`"), "{}", misspelt.stderr);
    assert!(misspelt.stdout.is_empty());

    let wrong_type = check(&env, "body_limit_bytes = \"ten megabytes\"\n").failure();
    assert!(wrong_type.stderr.contains("line 1") && wrong_type.stderr.contains("body_limit_bytes"), "{}", wrong_type.stderr);

    let zero = check(&env, "header_read_timeout_seconds = 0\n").failure();
    assert!(zero.stderr.contains("header_read_timeout_seconds must be at least 1"), "{}", zero.stderr);

    let unknown_region = check(&env, "[[regions]]\nid = \"mars-north-1\"\nkey_limit = 5\n").failure();
    assert!(unknown_region.stderr.contains("[[regions]] names unknown region 'mars-north-1'"), "{}", unknown_region.stderr);
}
