//! `bake pkg` and the recipes in `packages/`: every recipe validates, bad recipes are refused
//! with messages that name the problem and the fix, every recipe builds into a static
//! program (cached by content), and every program passes its smoke test under Kiln.
//!
//! Builds go to `<target>/kiln-pkg` (`KILN_CACHE`), so a second run only re-tests; in CI
//! everything builds once (about 12-15 minutes on 2 cores; openssl alone takes 2-3).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use kiln_tests::{
    Outcome, bake, require_tools, run_command, scratch_dir, target_dir, workspace_root,
};

/// Building every recipe from nothing on a loaded 2-core machine.
const BUILD_LIMIT: Duration = Duration::from_secs(1800);

fn cache_dir() -> PathBuf {
    target_dir().join("kiln-pkg")
}

fn packages_dir() -> PathBuf {
    workspace_root().join("packages")
}

/// `bake ARGS` with the test cache and the repository's packages.
fn bake_pkg(args: &[&str]) -> Outcome {
    bake_pkg_in(&packages_dir(), &cache_dir(), args)
}

fn bake_pkg_in(recipes: &Path, cache: &Path, args: &[&str]) -> Outcome {
    require_tools(&["qemu-system-x86_64"]);
    let mut cmd = Command::new(bake());
    cmd.args(args)
        .env("KILN_CACHE", cache)
        .env("KILN_PACKAGES", recipes);
    run_command(cmd, BUILD_LIMIT)
}

const PROGRAMS: [&str; 7] = [
    "go-http",
    "lua",
    "memcached",
    "nginx",
    "redis",
    "rust-http",
    "sqlite3",
];
const LIBRARIES: [&str; 4] = ["libevent", "openssl", "pcre2", "zlib"];

#[test]
fn every_recipe_validates_and_is_listed() {
    let got = bake_pkg(&["pkg", "list"]);
    assert_eq!(got.status, Some(0), "{got}");
    let lines: Vec<&str> = got.stdout.lines().collect();
    assert!(
        lines[0].starts_with("NAME") && lines[0].contains("VERSION") && lines[0].contains("TEST"),
        "{got}"
    );
    for name in PROGRAMS.iter().chain(LIBRARIES.iter()) {
        assert!(
            lines
                .iter()
                .any(|l| l.split_whitespace().next() == Some(name)),
            "{name} is not listed\n{got}"
        );
    }
    for lib in LIBRARIES {
        let line = lines.iter().find(|l| l.starts_with(lib)).unwrap();
        assert!(line.contains("library"), "{line}");
    }
    // Every recipe folder has its README (what was needed, what does not work yet).
    for name in PROGRAMS.iter().chain(LIBRARIES.iter()) {
        let readme = packages_dir().join(name).join("README.md");
        assert!(readme.is_file(), "{} is missing", readme.display());
    }
}

#[test]
fn info_shows_source_dependencies_and_test() {
    let got = bake_pkg(&["pkg", "info", "nginx"]);
    assert_eq!(got.status, Some(0), "{got}");
    for needle in [
        "nginx 1.22.1",
        "dependencies: pcre2, zlib, openssl",
        "apt-get source --download-only nginx=1.22.1-9+deb12u9",
        "sha256:     9ebb333a9e82b952acd3e2b4aeb1d4ff6406f72491bab6cd9fe69f0dea737f31",
        "program:      objs/nginx",
        "test:         http 80 GET / expect 200",
    ] {
        assert!(got.stdout.contains(needle), "missing {needle:?}\n{got}");
    }
    let got = bake_pkg(&["pkg", "info", "nginks"]);
    kiln_tests::assert_bake_error(
        &got,
        127,
        &["no recipe named \"nginks\"", "nginx", "bake pkg list"],
    );
}

// --- bad recipes ----------------------------------------------------------------------------

const GOOD: &str = r#"
name = "NAME"
version = "1.0"
summary = "a test recipe"
license = "MIT"
homepage = "https://example.org"
dependencies = DEPS

[source]
url = "https://example.org/x-1.0.tar.gz"
sha256 = "164c7849653b80ae67bec4b7473b884bf5cc8d2dca05653475ec2ed27b9ebf61"
debian = { package = "lua5.4", version = "5.4.4-3+deb12u1" }

[build]
script = "true"
program = "x"

[test]
kind = "exec"
args = []
expect_stdout = ""
"#;

fn recipe(name: &str, deps: &str) -> String {
    GOOD.replace("NAME", name).replace("DEPS", deps)
}

/// A packages folder with these recipes (name, recipe.toml text).
fn packages(test: &str, recipes: &[(&str, String)]) -> PathBuf {
    let dir = scratch_dir(test);
    for (name, text) in recipes {
        std::fs::create_dir_all(dir.join(name)).unwrap();
        std::fs::write(dir.join(name).join("recipe.toml"), text).unwrap();
    }
    dir
}

fn assert_refused(test: &str, recipes: &[(&str, String)], needles: &[&str]) {
    let dir = packages(test, recipes);
    let got = bake_pkg_in(&dir, &dir.join("cache"), &["pkg", "list"]);
    kiln_tests::assert_bake_error(&got, 125, needles);
}

#[test]
fn bad_recipes_are_refused_with_the_fix() {
    assert_refused(
        "pkg-unknown-key",
        &[(
            "a",
            recipe("a", "[]").replace("license =", "licence = \"MIT\"\nlicense ="),
        )],
        &[
            "a/recipe.toml",
            "unknown field `licence`",
            "packages/README.md",
        ],
    );
    assert_refused(
        "pkg-unknown-test-key",
        &[(
            "a",
            recipe("a", "[]").replace(
                "expect_stdout = \"\"",
                "expect_stdout = \"\"\nexpect_stderr = \"\"",
            ),
        )],
        &["unknown field `expect_stderr`"],
    );
    assert_refused(
        "pkg-missing-field",
        &[(
            "a",
            recipe("a", "[]").replace("summary = \"a test recipe\"\n", ""),
        )],
        &["a/recipe.toml", "missing field `summary`"],
    );
    assert_refused(
        "pkg-missing-source",
        &[(
            "a",
            recipe("a", "[]").replace(
                "debian = { package = \"lua5.4\", version = \"5.4.4-3+deb12u1\" }\n",
                "",
            ),
        )],
        &["[source] lacks debian", "url, sha256 and debian"],
    );
    assert_refused(
        "pkg-bad-checksum",
        &[("a", recipe("a", "[]").replace("164c7849", "164c78"))],
        &[
            "source.sha256",
            "not a SHA-256 (64 hex digits)",
            "sha256sum",
        ],
    );
    assert_refused(
        "pkg-unknown-dep",
        &[("a", recipe("a", "[\"zlibb\"]"))],
        &[
            "dependency \"zlibb\" has no recipe",
            "add packages/zlibb/recipe.toml",
        ],
    );
    assert_refused(
        "pkg-cycle",
        &[
            ("a", recipe("a", "[\"b\"]")),
            ("b", recipe("b", "[\"c\"]")),
            ("c", recipe("c", "[\"a\"]")),
        ],
        &[
            "dependency cycle a -> b -> c -> a",
            "remove one of these dependencies",
        ],
    );
    assert_refused(
        "pkg-name-folder",
        &[("a", recipe("b", "[]"))],
        &["named \"b\" but its folder is \"a\"", "rename"],
    );
    assert_refused(
        "pkg-no-test",
        &[(
            "a",
            recipe("a", "[]").replace(
                "[test]\nkind = \"exec\"\nargs = []\nexpect_stdout = \"\"\n",
                "",
            ),
        )],
        &["no [test]", "smoke test"],
    );
    assert_refused(
        "pkg-bad-port",
        &[(
            "a",
            recipe("a", "[]").replace("[test]", "[run]\nports = [\"80\"]\n\n[test]"),
        )],
        &["run.ports \"80\"", "HOST:GUEST"],
    );
    assert_refused(
        "pkg-toml-syntax",
        &[("a", "name = \"a\"\nversion = \n".to_string())],
        &["a/recipe.toml"],
    );
    // No recipes at all, and a name that has none: "not found".
    let empty = scratch_dir("pkg-empty");
    let got = bake_pkg_in(&empty, &empty.join("cache"), &["pkg", "list"]);
    kiln_tests::assert_bake_error(&got, 127, &["no recipes in", "--recipes DIR"]);
}

/// The archive Debian serves must have the recipe's checksum: a wrong one stops the build
/// before anything runs.
#[test]
fn a_source_with_another_checksum_is_refused() {
    require_tools(&["apt-get"]);
    let wrong = "0000000000000000000000000000000000000000000000000000000000000000";
    let text = recipe("lua-wrong", "[]")
        .replace(
            "164c7849653b80ae67bec4b7473b884bf5cc8d2dca05653475ec2ed27b9ebf61",
            wrong,
        )
        .replace(
            "https://example.org/x-1.0.tar.gz",
            "http://127.0.0.1:9/nothing-listens-here.tar.gz",
        );
    let dir = packages("pkg-wrong-sum", &[("lua-wrong", text)]);
    let got = bake_pkg_in(&dir, &dir.join("cache"), &["pkg", "build", "lua-wrong"]);
    assert_eq!(got.status, Some(125), "{got}");
    let last = got.stderr.lines().last().unwrap_or("");
    for needle in [
        "bake: error: cannot get the source of lua-wrong",
        "apt-get source lua5.4=5.4.4-3+deb12u1",
        &format!("no file of lua5.4=5.4.4-3+deb12u1 has SHA-256 {wrong}"),
        "scripts/setup.sh",
    ] {
        assert!(
            last.contains(needle),
            "missing {needle:?} in the last line\n{got}"
        );
    }
}

// --- builds -----------------------------------------------------------------------------------

/// Every recipe builds (dependencies first) into a static x86_64 program that bake accepts;
/// a second build comes from the cache.
#[test]
fn every_recipe_builds_a_static_program() {
    require_tools(&["musl-gcc", "make", "tclsh", "go", "apt-get"]);
    for name in PROGRAMS {
        let got = bake_pkg(&["pkg", "build", name]);
        assert_eq!(got.status, Some(0), "bake pkg build {name}\n{got}");
        let program = PathBuf::from(got.stdout.trim());
        let info = kiln_tests::ElfInfo::read(&program)
            .unwrap_or_else(|e| panic!("{name}: {}: {e}\n{got}", program.display()));
        assert!(
            info.interp.is_none(),
            "{name} is dynamically linked: {info:?}"
        );
        let again = bake_pkg(&["pkg", "build", name]);
        assert_eq!(again.status, Some(0), "{again}");
        assert_eq!(
            again.stdout, got.stdout,
            "a second build gives the same program"
        );
        assert!(
            again.stderr.contains(&format!("{name} ")) && again.stderr.contains(": cached"),
            "{again}"
        );
        assert!(
            again.elapsed < Duration::from_secs(10),
            "a cached build took {:?}",
            again.elapsed
        );
    }
}

/// `bake build --recipe` makes an image in one line; `bake run` boots it.
#[test]
fn build_recipe_makes_an_image() {
    let dir = scratch_dir("pkg-build-recipe");
    let img = dir.join("lua.img");
    let got = bake_pkg(&["build", "--recipe", "lua", "-o", img.to_str().unwrap()]);
    assert_eq!(got.status, Some(0), "{got}");
    let got = kiln_tests::bake_cmd(&["run", "--timeout", "60", img.to_str().unwrap()]);
    assert_eq!(got.status, Some(0), "{got}");
    assert!(
        got.stdout
            .starts_with("Lua 5.4 on Kiln (demo)\nfib(25) = 75025\n"),
        "{got}"
    );
    // Arguments after -- replace the recipe's run.args.
    let got = bake_pkg(&[
        "build",
        "--recipe",
        "lua",
        "-o",
        img.to_str().unwrap(),
        "--",
        "-e",
        "print(6 * 7)",
    ]);
    assert_eq!(got.status, Some(0), "{got}");
    let got = kiln_tests::bake_cmd(&["run", "--timeout", "60", img.to_str().unwrap()]);
    assert_eq!(
        (got.status, got.stdout.as_str()),
        (Some(0), "42\n"),
        "{got}"
    );
    let got = bake_pkg(&["build", "--recipe", "zlib", "-o", img.to_str().unwrap()]);
    kiln_tests::assert_bake_error(&got, 126, &["zlib is a library"]);
}

#[test]
fn pkg_run_merges_defaults_with_flags() {
    let got = bake_pkg(&[
        "pkg",
        "run",
        "lua",
        "--timeout",
        "60",
        "-e",
        "KILN_PKG=yes",
        "--",
        "-e",
        "print(os.getenv('KILN_PKG'), 6 * 7)",
    ]);
    assert_eq!(
        (got.status, got.stdout.as_str()),
        (Some(0), "yes\t42\n"),
        "{got}"
    );
    // A volume of sqlite3's (the default /data one is replaced by ours).
    let dir = scratch_dir("pkg-run-volume");
    let vol = dir.join("data.img");
    let got = kiln_tests::bake_cmd(&["volume", "create", vol.to_str().unwrap(), "--size", "32M"]);
    assert_eq!(got.status, Some(0), "{got}");
    let v = format!("{}:/data", vol.display());
    let got = bake_pkg(&[
        "pkg",
        "run",
        "sqlite3",
        "--timeout",
        "60",
        "-v",
        &v,
        "--",
        "/data/t.db",
        "create table t(x); insert into t values (7); select x * 6 from t;",
    ]);
    assert_eq!(
        (got.status, got.stdout.as_str()),
        (Some(0), "42\n"),
        "{got}"
    );
    let got = kiln_tests::bake_cmd(&["volume", "ls", vol.to_str().unwrap()]);
    assert!(
        got.stdout.contains("t.db"),
        "the database is on the volume\n{got}"
    );
}

// --- smoke tests --------------------------------------------------------------------------------

fn smoke(name: &str) {
    let got = bake_pkg(&["pkg", "test", name]);
    assert_eq!(got.status, Some(0), "bake pkg test {name}\n{got}");
    assert!(got.stdout.starts_with(&format!("PASS {name}: ")), "{got}");
    let list = bake_pkg(&["pkg", "list"]);
    let line = list
        .stdout
        .lines()
        .find(|l| l.starts_with(&format!("{name} ")))
        .unwrap_or("");
    assert!(
        line.contains(" pass "),
        "bake pkg list shows the pass: {line:?}\n{list}"
    );
}

#[test]
fn smoke_lua() {
    smoke("lua");
}

#[test]
fn smoke_sqlite3() {
    smoke("sqlite3");
}

#[test]
fn smoke_redis() {
    smoke("redis");
}

#[test]
fn smoke_nginx() {
    smoke("nginx");
}

#[test]
fn smoke_memcached() {
    smoke("memcached");
}

#[test]
fn smoke_go_http() {
    smoke("go-http");
}

#[test]
fn smoke_rust_http() {
    smoke("rust-http");
}

/// A failing smoke test is reported as FAIL with exit status 1 (and recorded for list).
#[test]
fn a_failing_smoke_test_fails() {
    let dir = scratch_dir("pkg-failing");
    let lua = packages_dir().join("lua");
    let copy = dir.join("lua");
    std::fs::create_dir_all(copy.join("files/srv")).unwrap();
    let text = std::fs::read_to_string(lua.join("recipe.toml"))
        .unwrap()
        .replace("fib(25) = 75025", "fib(25) = 75026");
    std::fs::write(copy.join("recipe.toml"), text).unwrap();
    std::fs::copy(
        lua.join("files/srv/demo.lua"),
        copy.join("files/srv/demo.lua"),
    )
    .unwrap();
    // Its own cache: the test result it records must not touch the real lua's.
    let got = bake_pkg_in(&dir, &dir.join("cache"), &["pkg", "test", "lua"]);
    assert_eq!(got.status, Some(1), "{got}");
    assert!(got.stdout.starts_with("FAIL lua: stdout "), "{got}");
    assert!(got.stdout.contains("75025"), "says what came out\n{got}");
}

// --- redis's data on a volume -------------------------------------------------------------------

/// Sends `send` to 127.0.0.1:`port` and reads until `expect` came back, retrying while the
/// guest boots (so `send` must be safe to repeat); panics with what came back at the deadline.
fn talk(port: u16, send: &str, expect: &str) {
    use std::io::{Read, Write};
    let end = std::time::Instant::now() + Duration::from_secs(90);
    let mut last = String::new();
    while std::time::Instant::now() < end {
        if let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", port)) {
            let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
            if s.write_all(send.as_bytes()).is_ok() {
                let mut got = Vec::new();
                let mut buf = [0u8; 1024];
                while let Ok(n) = s.read(&mut buf) {
                    if n == 0 {
                        break;
                    }
                    got.extend_from_slice(&buf[..n]);
                    if String::from_utf8_lossy(&got).contains(expect) {
                        return;
                    }
                }
                last = String::from_utf8_lossy(&got).into_owned();
            }
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    panic!("port {port}: sent {send:?}, wanted {expect:?}, last reply {last:?}");
}

/// redis's append-only file on a volume: written in one boot, stopped with SHUTDOWN, read
/// back in the next.
#[test]
fn redis_keeps_its_data_on_the_volume() {
    let dir = scratch_dir("pkg-redis-volume");
    let vol = dir.join("data.img");
    let got = kiln_tests::bake_cmd(&["volume", "create", vol.to_str().unwrap(), "--size", "64M"]);
    assert_eq!(got.status, Some(0), "{got}");
    let v = format!("{}:/data", vol.display());
    let boot = |send: &str, expect: &str| {
        let port = kiln_tests::free_port();
        let p = format!("{port}:6379");
        let mut cmd = Command::new(bake());
        cmd.args([
            "pkg",
            "run",
            "redis",
            "--timeout",
            "150",
            "-p",
            &p,
            "-v",
            &v,
        ])
        .env("KILN_CACHE", cache_dir())
        .env("KILN_PACKAGES", packages_dir());
        let vm = kiln_tests::Background::spawn(cmd);
        talk(port, send, expect);
        // SHUTDOWN answers nothing: the server ends.
        let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect");
        std::io::Write::write_all(&mut s, b"SHUTDOWN\r\n").expect("send SHUTDOWN");
        let got = vm.finish(Duration::from_secs(60));
        assert_eq!(
            got.status,
            Some(0),
            "redis stops cleanly on SHUTDOWN\n{got}"
        );
    };
    // `talk` may send twice (a first connection's reply lost to a read timeout under load):
    // DEL first keeps the list at three items whatever the retries. (It was not idempotent
    // before, and a retry's RPUSH answered :6, which waited for :3 until the deadline.)
    boot("DEL l\r\nSET kiln persisted\r\nRPUSH l a b c\r\n", "+OK\r\n:3\r\n");
    let got = kiln_tests::bake_cmd(&["volume", "ls", vol.to_str().unwrap(), "/appendonlydir"]);
    assert!(got.stdout.contains("appendonly.aof.1.incr.aof"), "{got}");
    boot(
        "GET kiln\r\nLRANGE l 0 -1\r\n",
        "$9\r\npersisted\r\n*3\r\n$1\r\na\r\n$1\r\nb\r\n$1\r\nc\r\n",
    );
}
