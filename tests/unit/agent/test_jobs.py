"""The job runner against a fake host: step order, stop at the first failure, timeouts, kept files, the result shape.

The fake host below stands in for apt, dpkg and scripts in unit tests only; tests/lab/test_jobs_lab.py
runs the same jobs against real Debian 12 hosts.
"""

from __future__ import annotations

import fcntl
import io
import json
import re
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from patchday.agent import jobs
from patchday.agent.jobs import (
    HttpCheck,
    JobSpec,
    Outcome,
    Script,
    Target,
    needs_reboot,
    parse_spec,
    run_job,
    run_subprocess,
    zipapp_argv,
)
from patchday.agent.packages import JobSpecError

RESULT_KEYS = {
    "job_id",
    "kind",
    "status",
    "error",
    "steps",
    "before",
    "after",
    "kept_files",
    "reboot_required",
    "reboot_scheduled",
    "health",
}
STEP_KEYS = {"name", "argv", "exit_code", "stdout", "stderr", "started_at", "finished_at", "timed_out"}
ISO = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z")


@dataclass
class FakeHost:
    """apt-get, dpkg-query, dpkg-deb and scripts of a pretend Debian host, answering from memory."""

    installed: dict[str, tuple[str, str]]  # name -> (version, arch)
    mirror: dict[str, list[str]]  # name -> versions apt can download (the candidate is the last)
    scripts: dict[str, Outcome] = field(default_factory=dict)  # argv[0] -> outcome
    install_result: dict[str, str] | None = None  # what the install really leaves (name -> version)
    extra_deps: dict[str, tuple[str, str, str]] = field(default_factory=dict)  # target -> (dep, version, arch)
    calls: list[tuple[list[str], dict[str, str], str | None]] = field(default_factory=list)
    clock: float = 1_700_000_000.0

    def now(self) -> float:
        self.clock += 0.5
        return self.clock

    def __call__(
        self, argv: Sequence[str], *, timeout: float, env: Mapping[str, str], cwd: str | None = None
    ) -> Outcome:
        argv = list(argv)
        self.calls.append((argv, dict(env), cwd))
        words = argv[argv.index("--") + 1 :] if "--" in argv else []
        if argv[:2] == ["apt-get", "-s"]:
            return Outcome(0, "Reading package lists...\n" + "\n".join(self.simulate(words)) + "\n", "")
        if argv[0] == "dpkg-query":
            rows = [
                f"{n}\t{self.installed[n][0]}\t{self.installed[n][1]}\tinstall ok installed"
                for n in words
                if n in self.installed
            ]
            return Outcome(0 if len(rows) == len(words) else 1, "\n".join(rows) + "\n", "")
        if argv[:2] == ["apt-get", "download"]:
            name, version = words[0].split("=")
            if version not in self.mirror.get(name, []):
                return Outcome(100, "", f"E: Can't find a source to download version '{version}' of '{name}'")
            assert cwd is not None
            arch = self.installed.get(name, ("", "amd64"))[1]
            (Path(cwd) / f"{name}_{version.replace(':', '%3a')}_{arch}.deb").write_text(f"{name} {version} {arch}")
            return Outcome(0, "Get:1 ...", "")
        if argv[0] == "dpkg-deb":
            name, version, arch = Path(argv[2]).read_text().split()
            return Outcome(0, f"Package: {name}\nVersion: {version}\nArchitecture: {arch}\n", "")
        if argv[:2] == ["dpkg-repack", "--"]:
            return Outcome(127, "", "cannot run dpkg-repack: No such file or directory")
        if argv[0] == "apt-get" and "install" in argv:
            self.apply(words)
            return Outcome(0, "Setting up ...", "")
        return self.scripts.get(argv[0], Outcome(0, f"{argv[0]} ok", ""))

    def simulate(self, words: list[str]) -> list[str]:
        lines = []
        for word in words:
            if "=" in word:
                name, version = word.split("=")
                old, arch = self.installed[name]
                lines.append(f"Inst {name} [{old}] ({version} Debian-Security:12/bookworm-security [{arch}])")
                if name in self.extra_deps:
                    dep, dep_version, dep_arch = self.extra_deps[name]
                    if dep in self.installed:
                        lines.append(f"Inst {dep} [{self.installed[dep][0]}] ({dep_version} Debian:12 [{dep_arch}])")
                    else:
                        lines.append(f"Inst {dep} ({dep_version} Debian:12 [{dep_arch}])")
            elif word.endswith("-"):
                name = word[:-1]
                lines.append(f"Remv {name} [{self.installed[name][0]}]")
            else:
                name, version, arch = Path(word).read_text().split()
                lines.append(f"Inst {name} [{self.installed[name][0]}] ({version} local-deb [{arch}])")
        return lines

    def apply(self, words: list[str]) -> None:
        for word in words:
            if "=" in word:
                name, version = word.split("=")
                if self.install_result is not None:
                    version = self.install_result.get(name, version)
                self.installed[name] = (version, self.installed[name][1])
                if name in self.extra_deps:
                    dep, dep_version, dep_arch = self.extra_deps[name]
                    self.installed[dep] = (dep_version, dep_arch)
            elif word.endswith("-"):
                self.installed.pop(word[:-1], None)
            else:
                name, version, arch = Path(word).read_text().split()
                self.installed[name] = (version, arch)

    def names_called(self) -> list[str]:
        return [" ".join(argv[:2]) for argv, _, _ in self.calls]


def host() -> FakeHost:
    return FakeHost(
        installed={"libexpat1": ("2.5.0-1+deb12u2", "amd64"), "liblzma5": ("5.4.1-1+deb12u1", "amd64")},
        mirror={
            "libexpat1": ["2.5.0-1+deb12u2", "2.5.0-1+deb12u5"],
            "liblzma5": ["5.4.1-1+deb12u1", "5.4.1-1+deb12u2"],
        },
    )


DEPLOY: dict[str, Any] = {
    "job_id": 41,
    "kind": "deploy",
    "manager": "apt",
    "targets": [
        {"name": "libexpat1", "version": "2.5.0-1+deb12u5"},
        {"name": "liblzma5", "version": "5.4.1-1+deb12u2"},
    ],
    "reboot": "never",
    "pre_scripts": [{"name": "drain", "argv": ["/usr/local/bin/drain", "--now"], "timeout": 30}],
    "post_scripts": [{"name": "undrain", "argv": ["/usr/local/bin/undrain"], "timeout": 30}],
    "health_checks": [
        {"name": "svc", "argv": ["/usr/bin/true"], "timeout": 10},
        {"name": "web", "url": "http://127.0.0.1:8080/health", "expect_status": 200, "timeout": 5},
    ],
    "snapshot": {"before": ["/usr/local/bin/snap", "pre"], "after": ["/usr/local/bin/snap", "post"], "timeout": 60},
    "step_timeout": 600,
}


def deploy(fake: FakeHost, root: Path, spec: dict[str, Any] | None = None, **kwargs: Any) -> dict[str, Any]:
    options: dict[str, Any] = {
        "root_dir": root,
        "runner": fake,
        "clock": fake.now,
        "http": lambda url, timeout: 200,
        "apt_archives": root / "archives",
        "reboot_required_file": root / "reboot-required",
        **kwargs,
    }
    return run_job(parse_spec(spec or DEPLOY), **options)


def step_names(result: dict[str, Any]) -> list[str]:
    return [step["name"] for step in result["steps"]]


def test_a_deploy_runs_every_step_in_order_and_keeps_the_previous_package_files(tmp_path: Path) -> None:
    fake = host()
    result = deploy(fake, tmp_path)
    assert result["status"] == "succeeded", result["error"]
    assert set(result) == RESULT_KEYS
    assert step_names(result) == [
        "simulate",
        "installed-before",
        "download:libexpat1",
        "verify:libexpat1",
        "download:liblzma5",
        "verify:liblzma5",
        "snapshot-before",
        "pre:drain",
        "install",
        "installed-after",
        "post:undrain",
        "health:svc",
        "snapshot-after",
    ]
    assert result["before"] == {
        "libexpat1": {"version": "2.5.0-1+deb12u2", "arch": "amd64"},
        "liblzma5": {"version": "5.4.1-1+deb12u1", "arch": "amd64"},
    }
    assert result["after"] == {
        "libexpat1": {"version": "2.5.0-1+deb12u5", "arch": "amd64"},
        "liblzma5": {"version": "5.4.1-1+deb12u2", "arch": "amd64"},
    }
    assert result["kept_files"] == [
        str(tmp_path / "41" / "libexpat1_2.5.0-1+deb12u2_amd64.deb"),
        str(tmp_path / "41" / "liblzma5_5.4.1-1+deb12u1_amd64.deb"),
    ]
    assert result["health"] == [
        {"name": "svc", "ok": True, "detail": "exit 0"},
        {"name": "web", "ok": True, "detail": "HTTP 200"},
    ]
    assert (result["reboot_required"], result["reboot_scheduled"]) == (False, False)
    for step in result["steps"]:
        assert set(step) == STEP_KEYS
        assert ISO.fullmatch(step["started_at"])
        assert ISO.fullmatch(step["finished_at"])
    manifest = json.loads((tmp_path / "41" / "manifest.json").read_text())
    assert manifest["packages"]["libexpat1"] == {
        "version": "2.5.0-1+deb12u2",
        "arch": "amd64",
        "file": str(tmp_path / "41" / "libexpat1_2.5.0-1+deb12u2_amd64.deb"),
    }
    assert (tmp_path / "41").stat().st_mode & 0o777 == 0o700
    assert (tmp_path / "41" / "manifest.json").stat().st_mode & 0o777 == 0o600


def test_every_command_is_an_argv_list_with_a_clean_environment(tmp_path: Path) -> None:
    fake = host()
    deploy(fake, tmp_path)
    install = next((argv, env) for argv, env, _ in fake.calls if argv[:2] == ["apt-get", "install"])
    assert install[0][-2:] == ["libexpat1=2.5.0-1+deb12u5", "liblzma5=5.4.1-1+deb12u2"]
    assert install[1]["DEBIAN_FRONTEND"] == "noninteractive"
    assert install[1]["NEEDRESTART_MODE"] == "a"
    assert install[1]["LC_ALL"] == "C"
    assert install[1]["PATCHDAY_JOB_ID"] == "41"
    downloads = [cwd for argv, _, cwd in fake.calls if argv[:2] == ["apt-get", "download"]]
    assert downloads == [str(tmp_path / "41")] * 2
    assert all(isinstance(argv, list) and all(isinstance(w, str) for w in argv) for argv, _, _ in fake.calls)


def test_a_cached_package_file_is_copied_instead_of_downloaded(tmp_path: Path) -> None:
    fake = host()
    archives = tmp_path / "archives"
    archives.mkdir()
    (archives / "libexpat1_2.5.0-1+deb12u2_amd64.deb").write_text("libexpat1 2.5.0-1+deb12u2 amd64")
    result = deploy(fake, tmp_path)
    assert result["status"] == "succeeded"
    assert "download:libexpat1" not in step_names(result)
    assert (tmp_path / "41" / "libexpat1_2.5.0-1+deb12u2_amd64.deb").read_text() == "libexpat1 2.5.0-1+deb12u2 amd64"


def test_a_package_file_that_cannot_be_kept_fails_the_job_before_anything_changes(tmp_path: Path) -> None:
    fake = host()
    fake.mirror["liblzma5"] = ["5.4.1-1+deb12u2"]  # the installed version is gone from the mirror
    result = deploy(fake, tmp_path)
    assert result["status"] == "failed"
    assert "liblzma5 5.4.1-1+deb12u1" in result["error"]
    assert "nothing was changed" in result["error"]
    assert step_names(result)[-2:] == ["download:liblzma5", "repack:liblzma5"]
    assert not any(argv[:2] == ["apt-get", "install"] for argv, _, _ in fake.calls)
    assert not any(argv[0] == "/usr/local/bin/drain" for argv, _, _ in fake.calls)
    assert fake.installed["libexpat1"][0] == "2.5.0-1+deb12u2"


def test_dependencies_apt_pulls_in_are_recorded_and_kept_and_new_ones_are_marked_absent(tmp_path: Path) -> None:
    fake = host()
    fake.extra_deps["libexpat1"] = ("libnew1", "1.0-1", "amd64")
    result = deploy(fake, tmp_path)
    assert result["status"] == "succeeded", result["error"]
    assert result["before"]["libnew1"] == {"version": None, "arch": "amd64"}
    assert result["after"]["libnew1"] == {"version": "1.0-1", "arch": "amd64"}
    assert json.loads((tmp_path / "41" / "manifest.json").read_text())["packages"]["libnew1"]["file"] is None


def test_a_failing_pre_script_stops_the_job_before_the_install(tmp_path: Path) -> None:
    fake = host()
    fake.scripts["/usr/local/bin/drain"] = Outcome(3, "", "drain: backend busy\n")
    result = deploy(fake, tmp_path)
    assert result["status"] == "failed"
    assert result["error"] == "step pre:drain failed: /usr/local/bin/drain exited with 3: drain: backend busy"
    assert step_names(result)[-1] == "pre:drain"
    assert fake.installed["libexpat1"][0] == "2.5.0-1+deb12u2"


def test_a_timed_out_pre_script_fails_the_job(tmp_path: Path) -> None:
    fake = host()
    fake.scripts["/usr/local/bin/drain"] = Outcome(None, "", "", timed_out=True)
    result = deploy(fake, tmp_path)
    assert result["status"] == "failed"
    assert result["steps"][-1]["timed_out"] is True
    assert result["steps"][-1]["exit_code"] is None
    assert "pre:drain" in result["error"]
    assert "timed out after 30 s" in result["error"]


def test_the_host_must_report_each_target_at_exactly_its_version(tmp_path: Path) -> None:
    fake = host()
    fake.install_result = {"liblzma5": "5.4.1-1+deb12u1"}  # apt left it where it was
    result = deploy(fake, tmp_path)
    assert result["status"] == "failed"
    assert result["error"] == "step verify failed: host reports liblzma5 at 5.4.1-1+deb12u1, asked for 5.4.1-1+deb12u2"
    assert "post:undrain" not in step_names(result)


def test_a_failed_install_still_records_where_the_host_was_left(tmp_path: Path) -> None:
    fake = host()

    def failing(argv: Sequence[str], *, timeout: float, env: Mapping[str, str], cwd: str | None = None) -> Outcome:
        if list(argv[:2]) == ["apt-get", "install"]:
            return Outcome(100, "", "E: Sub-process /usr/bin/dpkg returned an error code (1)\n")
        return fake(argv, timeout=timeout, env=env, cwd=cwd)

    result = deploy(fake, tmp_path, runner=failing)
    assert (
        result["error"]
        == "step install failed: apt-get exited with 100: E: Sub-process /usr/bin/dpkg returned an error code (1)"
    )
    assert step_names(result)[-2:] == ["install", "installed-after"]
    assert result["after"]["libexpat1"]["version"] == "2.5.0-1+deb12u2"


def test_failed_health_checks_are_all_reported(tmp_path: Path) -> None:
    fake = host()
    fake.scripts["/usr/bin/true"] = Outcome(1, "", "inactive\n")
    result = deploy(fake, tmp_path, http=lambda url, timeout: 503)
    assert result["status"] == "failed"
    assert result["error"] == "step health failed: svc, web"
    assert result["health"] == [
        {"name": "svc", "ok": False, "detail": "/usr/bin/true exited with 1: inactive"},
        {"name": "web", "ok": False, "detail": "HTTP 503, expected 200"},
    ]
    assert "snapshot-after" not in step_names(result)


def test_output_is_cut_to_its_last_8_kib(tmp_path: Path) -> None:
    fake = host()
    fake.scripts["/usr/local/bin/drain"] = Outcome(0, "x" * 20000 + "END", "é" * 10000)
    result = deploy(fake, tmp_path)
    step = next(s for s in result["steps"] if s["name"] == "pre:drain")
    assert len(step["stdout"].encode()) <= 8192
    assert step["stdout"].endswith("END")
    assert len(step["stderr"].encode()) <= 8192


@pytest.mark.parametrize(
    ("policy", "required", "expected"),
    [
        ("never", False, False),
        ("never", True, False),
        ("if_required", False, False),
        ("if_required", True, True),
        ("always", False, True),
        ("always", True, True),
    ],
)
def test_needs_reboot(policy: str, required: bool, expected: bool) -> None:
    assert needs_reboot(policy, required) is expected


def test_a_reboot_is_scheduled_with_shutdown_when_the_host_requires_it(tmp_path: Path) -> None:
    fake = host()
    (tmp_path / "reboot-required").write_text("*** System restart required ***\n")
    result = deploy(fake, tmp_path, {**DEPLOY, "reboot": "if_required"})
    assert (result["reboot_required"], result["reboot_scheduled"]) == (True, True)
    assert result["steps"][-1]["argv"] == ["shutdown", "-r", "+1", "patchday job 41"]


def test_a_rollback_puts_back_the_kept_versions_and_removes_what_the_deploy_installed(tmp_path: Path) -> None:
    fake = host()
    fake.extra_deps["libexpat1"] = ("libnew1", "1.0-1", "amd64")
    deployed = deploy(fake, tmp_path)
    assert deployed["status"] == "succeeded"
    restore = [
        {"name": name, "version": state["version"], "arch": state["arch"]} for name, state in deployed["before"].items()
    ]
    spec = {"job_id": 42, "kind": "rollback", "manager": "apt", "rollback_of": 41, "restore": restore}
    result = deploy(fake, tmp_path, spec)
    assert result["status"] == "succeeded", result["error"]
    assert step_names(result) == ["installed-before", "simulate", "rollback", "installed-after"]
    rollback = result["steps"][2]["argv"]
    assert "--allow-downgrades" in rollback
    assert rollback[-1] == "libnew1-"
    assert result["after"] == {
        "libexpat1": {"version": "2.5.0-1+deb12u2", "arch": "amd64"},
        "liblzma5": {"version": "5.4.1-1+deb12u1", "arch": "amd64"},
        "libnew1": {"version": None, "arch": "amd64"},
    }
    assert fake.installed == {"libexpat1": ("2.5.0-1+deb12u2", "amd64"), "liblzma5": ("5.4.1-1+deb12u1", "amd64")}
    again = deploy(fake, tmp_path, {**spec, "job_id": 43})
    assert again["status"] == "succeeded"
    assert step_names(again) == ["installed-before", "installed-after"], "nothing left to do: idempotent"


def test_a_rollback_refuses_to_change_packages_outside_its_restore_list(tmp_path: Path) -> None:
    fake = host()
    deploy(fake, tmp_path)
    spec = {
        "job_id": 42,
        "kind": "rollback",
        "manager": "apt",
        "rollback_of": 41,
        "restore": [{"name": "libexpat1", "version": "2.5.0-1+deb12u2", "arch": "amd64"}],
    }
    original = fake.simulate
    fake.simulate = lambda words: [*original(words), "Remv openssh-server [1:9.2p1-2]"]  # type: ignore[method-assign]
    result = deploy(fake, tmp_path, spec)
    assert result["status"] == "failed"
    assert "would also change openssh-server 1:9.2p1-2 -> removed" in result["error"]
    assert fake.installed["libexpat1"][0] == "2.5.0-1+deb12u5"


def test_a_rollback_without_the_deploy_manifest_or_file_fails_before_changing_anything(tmp_path: Path) -> None:
    fake = host()
    spec = {
        "job_id": 42,
        "kind": "rollback",
        "manager": "apt",
        "rollback_of": 9,
        "restore": [{"name": "libexpat1", "version": "2.5.0-1+deb12u1", "arch": "amd64"}],
    }
    result = deploy(fake, tmp_path, spec)
    assert result["status"] == "failed"
    assert "step manifest failed" in result["error"]
    deploy(fake, tmp_path, {**DEPLOY, "job_id": 9})
    result = deploy(fake, tmp_path, spec)  # the deploy kept 2.5.0-1+deb12u2, not deb12u1
    assert "kept no file of libexpat1 2.5.0-1+deb12u1" in result["error"]
    assert not any(s["name"] == "rollback" for s in result["steps"])


def test_another_running_job_is_refused(tmp_path: Path) -> None:
    with (tmp_path / ".lock").open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        result = deploy(host(), tmp_path)
    assert result["status"] == "failed"
    assert "another job is running" in result["error"]


def test_only_apt_hosts_run_jobs_for_now(tmp_path: Path) -> None:
    fake = host()
    spec = {
        "job_id": 5,
        "kind": "deploy",
        "manager": "dnf",
        "targets": [{"name": "openssl", "version": "1:3.0.7-25.el9"}],
    }
    result = deploy(fake, tmp_path, spec)
    assert result["error"] == "step validate failed: this agent runs jobs on apt hosts only, not dnf"
    assert fake.calls == []


def test_an_invalid_spec_document_fails_at_validate_and_runs_nothing(tmp_path: Path) -> None:
    fake = host()
    result = run_job(
        {**DEPLOY, "targets": [{"name": "libexpat1", "version": "$(reboot)"}]}, root_dir=tmp_path, runner=fake
    )
    assert set(result) == RESULT_KEYS
    assert result["status"] == "failed"
    assert result["job_id"] == 41
    assert "$(reboot)" in result["error"]
    assert result["error"].startswith("step validate failed")
    assert fake.calls == []
    assert not (tmp_path / "41").exists()


# -- the spec --------------------------------------------------------------------------------------


def test_parse_spec_builds_the_dataclasses() -> None:
    spec = parse_spec(DEPLOY)
    assert spec.targets[0] == Target("libexpat1", "2.5.0-1+deb12u5")
    assert spec.pre_scripts == (Script("drain", ("/usr/local/bin/drain", "--now"), 30),)
    assert spec.health_checks[1] == HttpCheck("web", "http://127.0.0.1:8080/health", 200, 5)
    assert spec.snapshot.before == ("/usr/local/bin/snap", "pre")
    minimal = parse_spec(
        {"job_id": 1, "kind": "deploy", "manager": "apt", "targets": [{"name": "jq", "version": "1.6-2"}]}
    )
    assert minimal == JobSpec(1, "deploy", "apt", targets=(Target("jq", "1.6-2"),))


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"extra": 1}, "unknown keys: extra"),
        ({"job_id": True}, "job_id must be an integer"),
        ({"job_id": "41"}, "job_id must be an integer"),
        ({"job_id": 0}, "job_id must be an integer"),
        ({"kind": "upgrade"}, "kind must be one of"),
        ({"manager": "pacman"}, "manager must be one of"),
        ({"targets": []}, "at least one target"),
        ({"targets": [{"name": "-oAPT::x", "version": "1"}]}, "-oAPT::x"),
        ({"targets": [{"name": "a;rm", "version": "1"}]}, "a;rm"),
        ({"targets": [{"name": "jq", "version": "1 2"}]}, "'1 2'"),
        ({"targets": [{"name": "jq", "version": "1", "arch": "amd64"}]}, "unknown keys: arch"),
        ({"targets": [{"name": "jq", "version": "1"}, {"name": "jq", "version": "2"}]}, "jq twice"),
        ({"targets": "jq=1"}, "targets must be a list"),
        ({"rollback_of": 3}, "no rollback_of"),
        ({"reboot": "sometimes"}, "reboot must be one of"),
        ({"step_timeout": 0}, "step_timeout"),
        ({"step_timeout": 10.5}, "step_timeout"),
        ({"pre_scripts": [{"name": "x", "argv": "rm -rf /", "timeout": 5}]}, "argv must be a list"),
        ({"pre_scripts": [{"name": "x", "argv": [], "timeout": 5}]}, "must not be empty"),
        ({"pre_scripts": [{"name": "x", "argv": ["a\x00b"], "timeout": 5}]}, "NUL"),
        ({"pre_scripts": [{"name": "a b", "argv": ["x"], "timeout": 5}]}, "1-64 letters"),
        ({"pre_scripts": [{"name": "x", "argv": ["x"]}]}, "lacks timeout"),
        ({"health_checks": [{"name": "w", "url": "file:///etc/shadow", "expect_status": 200, "timeout": 5}]}, "http"),
        ({"health_checks": [{"name": "w", "url": "http://h/", "expect_status": 99, "timeout": 5}]}, "expect_status"),
        ({"snapshot": {"before": ["x"]}}, "snapshot lacks timeout"),
    ],
)
def test_parse_spec_refuses(change: dict[str, Any], message: str) -> None:
    with pytest.raises(JobSpecError, match=re.escape(message)):
        parse_spec({**DEPLOY, **change})


def test_parse_spec_of_rollbacks() -> None:
    spec = parse_spec(
        {
            "job_id": 2,
            "kind": "rollback",
            "manager": "apt",
            "rollback_of": 1,
            "restore": [{"name": "libnew1", "version": None, "arch": "amd64"}],
        }
    )
    assert spec.restore[0].version is None
    for bad in (
        {"job_id": 2, "kind": "rollback", "manager": "apt", "restore": []},
        {"job_id": 2, "kind": "rollback", "manager": "apt", "rollback_of": 1, "restore": []},
        {
            "job_id": 2,
            "kind": "rollback",
            "manager": "apt",
            "rollback_of": None,
            "restore": [{"name": "a1", "version": None, "arch": "amd64"}],
        },
        {
            "job_id": 2,
            "kind": "rollback",
            "manager": "apt",
            "rollback_of": 1,
            "restore": [{"name": "a1", "version": None, "arch": "AMD 64"}],
        },
        "not an object",
    ):
        with pytest.raises(JobSpecError):
            parse_spec(bad)


# -- the command line and the real runner ----------------------------------------------------------


def run_main(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], stdin: bytes) -> tuple[int, Any]:
    monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO(stdin)))
    code = jobs.main([])
    return code, json.loads(capsys.readouterr().out)


def test_main_exits_2_with_a_json_error_for_a_bad_spec(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out = run_main(monkeypatch, capsys, b"{not json")
    assert code == 2
    assert out["status"] == "invalid"
    assert "not JSON" in out["error"]
    code, out = run_main(
        monkeypatch, capsys, json.dumps({**DEPLOY, "targets": [{"name": "jq", "version": "-1"}]}).encode()
    )
    assert code == 2
    assert "'-1'" in out["error"]
    code, out = run_main(monkeypatch, capsys, b" " * (jobs.MAX_SPEC_BYTES + 1))
    assert code == 2
    assert "larger than" in out["error"]


def test_run_subprocess_captures_and_kills_on_timeout() -> None:
    env = {"PATH": "/usr/bin:/bin"}
    done = run_subprocess(["sh", "-c", "echo out; echo err >&2; exit 4"], timeout=10, env=env)
    assert done == Outcome(4, "out\n", "err\n")
    slow = run_subprocess(["sh", "-c", "echo started; sleep 30"], timeout=0.5, env=env)
    assert slow.timed_out
    assert slow.exit_code is None
    assert slow.stdout == "started\n"
    missing = run_subprocess(["/nonexistent/tool"], timeout=5, env=env)
    assert missing.exit_code == 127
    assert "cannot run /nonexistent/tool" in missing.stderr


def test_the_job_runner_runs_from_the_agent_zipapp_with_the_system_python(tmp_path: Path) -> None:
    from patchday.agent.build import build_zipapp

    if not Path("/usr/bin/python3").exists():
        pytest.skip("/usr/bin/python3 is needed")
    pyz = build_zipapp(tmp_path / "patchday-agent.pyz")
    argv = zipapp_argv(str(pyz), python="/usr/bin/python3", root_dir=str(tmp_path / "jobs"))
    spec = {**DEPLOY, "targets": [{"name": "jq", "version": "1;reboot"}]}
    done = subprocess.run(
        argv, input=json.dumps(spec), capture_output=True, text=True, timeout=60, check=False, cwd=tmp_path
    )
    assert done.returncode == 2, done.stderr
    assert json.loads(done.stdout) == {"status": "invalid", "error": "version '1;reboot' is not a valid apt version"}
    assert not (tmp_path / "jobs").exists()


def _recorded(name: str) -> str:
    text = (Path(__file__).resolve().parents[2] / "fixtures" / "jobs" / name).read_text()
    return "\n".join(line for line in text.splitlines() if not line.startswith("#"))


def test_a_preview_simulation_reports_every_package_apt_would_touch() -> None:
    seen: list[list[str]] = []

    def runner(argv: Sequence[str], *, timeout: float, env: Mapping[str, str], cwd: str | None = None) -> Outcome:
        seen.append(list(argv))
        return Outcome(0, _recorded("apt-simulate-install.txt"), "")

    answer = jobs.simulate(
        {"plan_host": 4, "manager": "apt", "targets": [{"name": "sl", "version": "5.02-1+b1"}]}, runner
    )
    assert answer["error"] == ""
    assert seen[0][:2] == ["apt-get", "-s"]
    assert seen[0][-1] == "sl=5.02-1+b1"
    assert len(answer["changes"]) == 3  # the target and what it pulls in
    assert {c["action"] for c in answer["changes"]} == {"install"}


@pytest.mark.parametrize(
    "request_",
    [
        {"plan_host": 1, "manager": "apt", "targets": [{"name": "-oAPT::x", "version": "1"}]},
        {"plan_host": 1, "manager": "apt", "targets": [{"name": "sl", "version": "1;reboot"}]},
        {"plan_host": 1, "manager": "yum", "targets": []},
    ],
)
def test_a_hostile_simulation_request_runs_nothing(request_: dict[str, Any]) -> None:
    def runner(argv: Sequence[str], *, timeout: float, env: Mapping[str, str], cwd: str | None = None) -> Outcome:
        raise AssertionError("nothing may run")

    answer = jobs.simulate(request_, runner)
    assert answer["error"]
    assert answer["changes"] == []
