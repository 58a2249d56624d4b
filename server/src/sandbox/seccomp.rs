//! The `process` driver's seccomp filters: what Docker's default profile denies that an
//! unprivileged root could still reach (calls behind a capability the sandbox lacks are
//! refused by the kernel already), compiled by seccompiler to the BPF that bubblewrap
//! loads (`--add-seccomp-fd`) just before it runs the agent.
//!
//! Two filters, both allowing everything else: [`DENIED`] answers `EPERM`, and [`ABSENT`]
//! answers `ENOSYS` (`clone3`, whose flags a filter cannot read, so libc falls back to
//! `clone`, whose flags it can). Another architecture's calls (i386 through `int 0x80`) kill
//! the process: the lists name only the host's numbers. x32 numbers of the denied calls are
//! denied too.

use std::collections::BTreeMap;

use anyhow::Context as _;
use nix::libc;
use seccompiler::{
    BpfProgram, SeccompAction, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition, SeccompFilter,
    SeccompRule, TargetArch,
};

/// Calls refused with `EPERM`, each for its reason.
const DENIED: &[(libc::c_long, &str)] = &[
    // The kernel keyring is not namespaced: keys of the host and of other sessions.
    (libc::SYS_keyctl, "keyctl"),
    (libc::SYS_add_key, "add_key"),
    (libc::SYS_request_key, "request_key"),
    // Kernel code and tracing: eBPF programs, perf events, modules, a new kernel.
    (libc::SYS_bpf, "bpf"),
    (libc::SYS_perf_event_open, "perf_event_open"),
    (libc::SYS_init_module, "init_module"),
    (libc::SYS_finit_module, "finit_module"),
    (libc::SYS_delete_module, "delete_module"),
    (libc::SYS_kexec_load, "kexec_load"),
    (libc::SYS_kexec_file_load, "kexec_file_load"),
    // Opening host files by handle (the classic container escape), other namespaces.
    (libc::SYS_open_by_handle_at, "open_by_handle_at"),
    (libc::SYS_setns, "setns"),
    // Page-fault handling from user space widens kernel races; accounting, swap, reboot.
    (libc::SYS_userfaultfd, "userfaultfd"),
    (libc::SYS_acct, "acct"),
    (libc::SYS_swapon, "swapon"),
    (libc::SYS_swapoff, "swapoff"),
    (libc::SYS_reboot, "reboot"),
    (libc::SYS_syslog, "syslog"),
    (libc::SYS_lookup_dcookie, "lookup_dcookie"),
];

/// Calls answered `ENOSYS`, as on a kernel without them: programs fall back.
const ABSENT: &[(libc::c_long, &str)] = &[
    (libc::SYS_clone3, "clone3"),
    // io_uring bypasses the filter for the operations it runs (Docker's default denies it).
    (libc::SYS_io_uring_setup, "io_uring_setup"),
    (libc::SYS_io_uring_enter, "io_uring_enter"),
    (libc::SYS_io_uring_register, "io_uring_register"),
];

/// x32 calls are the x86_64 numbers with this bit set (elsewhere, numbers nothing has).
const X32_BIT: libc::c_long = 0x4000_0000;

/// `unshare` and `clone` with `CLONE_NEWUSER`: a new user namespace makes its creator root
/// in it, with every capability over what it then creates (the kernel surface behind most
/// container escapes). Refused with `EPERM` in [`DENIED`]'s filter.
const NEW_USER_NAMESPACE: &[(libc::c_long, u8)] = &[(libc::SYS_unshare, 0), (libc::SYS_clone, 0)];

fn arch() -> anyhow::Result<TargetArch> {
    TargetArch::try_from(std::env::consts::ARCH)
        .map_err(|e| anyhow::anyhow!("seccomp for {}: {e:?}", std::env::consts::ARCH))
}

/// A filter answering `errno` to the calls in `rules` (their x32 numbers too) and allowing
/// the rest.
fn program(calls: Vec<(libc::c_long, Vec<SeccompRule>)>, errno: i32) -> anyhow::Result<BpfProgram> {
    let mut rules: BTreeMap<i64, Vec<SeccompRule>> = BTreeMap::new();
    for (nr, call_rules) in calls {
        rules.insert(nr | X32_BIT, call_rules.clone());
        rules.insert(nr, call_rules);
    }
    let action = SeccompAction::Errno(errno as u32);
    let filter = SeccompFilter::new(rules, SeccompAction::Allow, action, arch()?)
        .context("the seccomp filter")?;
    BpfProgram::try_from(filter).context("compiling the seccomp filter")
}

/// The `EPERM` filter: [`DENIED`] and new user namespaces.
fn denied() -> anyhow::Result<BpfProgram> {
    let mut calls: Vec<_> = DENIED.iter().map(|(nr, _)| (*nr, vec![])).collect();
    let flag = libc::CLONE_NEWUSER as u64;
    for (nr, arg) in NEW_USER_NAMESPACE {
        let condition = SeccompCondition::new(
            *arg,
            SeccompCmpArgLen::Qword,
            SeccompCmpOp::MaskedEq(flag),
            flag,
        )
        .context("a seccomp condition")?;
        calls.push((*nr, vec![SeccompRule::new(vec![condition]).context("a seccomp rule")?]));
    }
    program(calls, libc::EPERM)
}

/// The `ENOSYS` filter: [`ABSENT`].
fn absent() -> anyhow::Result<BpfProgram> {
    program(ABSENT.iter().map(|(nr, _)| (*nr, vec![])).collect(), libc::ENOSYS)
}

/// A program as the kernel (and bubblewrap) reads it: `struct sock_filter` after another,
/// in the host's byte order.
fn bytes(program: &BpfProgram) -> Vec<u8> {
    let mut out = Vec::with_capacity(program.len() * 8);
    for instruction in program {
        out.extend_from_slice(&instruction.code.to_ne_bytes());
        out.push(instruction.jt);
        out.push(instruction.jf);
        out.extend_from_slice(&instruction.k.to_ne_bytes());
    }
    out
}

/// The two filters' programs, for `--add-seccomp-fd` each.
pub fn programs() -> anyhow::Result<[Vec<u8>; 2]> {
    Ok([bytes(&denied()?), bytes(&absent()?)])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_filters_compile_to_whole_instructions() {
        let [denied, absent] = programs().expect("programs");
        for program in [&denied, &absent] {
            assert!(!program.is_empty() && program.len() % 8 == 0, "{}", program.len());
        }
    }
}
