//! A bad EAL argument gives a clear error naming DPDK's reason, and the process can still
//! bring the EAL up afterwards with good arguments. Its own process: EAL init is once only.

mod common;

use dpdk::{Eal, Error};

#[test]
fn a_bad_eal_argument_is_a_clear_error() {
    let err = Eal::init(["--no-huge", "--definitely-not-an-eal-flag"]).err().expect("must fail");
    match &err {
        Error::EalInit { errno, text, args } => {
            assert_eq!(*errno, 22);
            assert!(!text.is_empty());
            assert!(args.contains("--definitely-not-an-eal-flag"));
        }
        other => panic!("expected EalInit, got {other:?}"),
    }
    assert!(err.to_string().contains("EAL initialization failed"), "{err}");
    assert!(matches!(Eal::init(["with\0nul"]), Err(Error::BadName(_))));
    let eal = Eal::init(common::test_eal_args(&[])).expect("good arguments still work after a bad try");
    assert_eq!(eal.port_count(), 0);
}
