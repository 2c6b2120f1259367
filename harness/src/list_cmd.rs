//! `verity list`: what can be tested, with which faults, and which bugs can be switched on.

use nemesis::FaultKind;

pub fn render() -> String {
    let mut out = String::from("systems:\n");
    for s in systems::systems() {
        out.push_str(&format!(
            "  {:<10} {} (workloads: {})\n",
            s.name,
            s.description,
            s.workloads.join(", ")
        ));
        for b in s.bugs {
            out.push_str(&format!(
                "      --bug {:<16} {} [exposed by --nemesis {}]\n",
                b.name, b.description, b.exposed_by
            ));
        }
    }
    out.push_str("workloads:\n");
    for (name, description) in workloads::WORKLOADS {
        out.push_str(&format!("  {name:<20} {description}\n"));
    }
    out.push_str("nemeses (--nemesis a,b,... | all | none):\n");
    for k in FaultKind::EVERY {
        out.push_str(&format!("  {:<20} {}\n", k.name(), k.description()));
    }
    out
}
