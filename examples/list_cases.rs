//! Prints the name of every conformance case, one per line. CI compares
//! this count with the number of conformance tests that ran per backend, so
//! a leg that silently ran nothing (or too little) fails.

fn main() {
    for case in handshake_storage::conformance::CASES {
        println!("{}", case.name);
    }
}
