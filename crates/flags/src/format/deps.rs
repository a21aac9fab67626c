//! `depends_on`: unknown flags, cycles and chains longer than evaluation
//! follows.

use super::*;

/// A dependency cycle, as the flags along it (first repeated at the end).
/// `graph` holds the flags that have dependencies.
/// A dependency cycle (its flags, the first repeated at the end), or the
/// longest dependency chain (its flags, from the dependent to the flag it
/// ends on). Iterative, so a chain of any length cannot overflow the stack.
pub(super) fn check_dependencies<'a>(
    graph: &BTreeMap<&'a str, &'a [String]>,
) -> Result<Vec<&'a str>, Vec<&'a str>> {
    // Per flag: on the walk's stack, or done with its longest chain's
    // length and the next flag on it.
    enum State<'a> {
        Open,
        Done(usize, Option<&'a str>),
    }
    let mut state: FxHashMap<&'a str, State<'a>> = FxHashMap::default();
    let deps = |n: &str| graph.get(n).copied().unwrap_or_default();
    for &root in graph.keys() {
        if state.contains_key(root) {
            continue;
        }
        // (flag, index of the next dependency to visit)
        let mut stack: Vec<(&'a str, usize)> = vec![(root, 0)];
        state.insert(root, State::Open);
        while let Some(&mut (node, ref mut next)) = stack.last_mut() {
            let list = deps(node);
            if let Some(dep) = list.get(*next) {
                *next += 1;
                let dep = dep.as_str();
                if dep == node {
                    continue; // reported as "depends on itself"
                }
                match state.get(dep) {
                    Some(State::Open) => {
                        let from = stack.iter().position(|(n, _)| *n == dep).unwrap_or(0);
                        let mut cycle: Vec<&str> = stack[from..].iter().map(|(n, _)| *n).collect();
                        cycle.push(dep);
                        return Err(cycle);
                    }
                    Some(State::Done(..)) => {}
                    None => {
                        state.insert(dep, State::Open);
                        stack.push((dep, 0));
                    }
                }
                continue;
            }
            // Every dependency is done: this flag's longest chain.
            let best = list
                .iter()
                .filter(|d| d.as_str() != node)
                .map(|d| match state.get(d.as_str()) {
                    Some(State::Done(len, _)) => (*len, d.as_str()),
                    _ => (1, d.as_str()),
                })
                .max_by_key(|(len, _)| *len);
            let done = match best {
                Some((len, d)) => State::Done(len + 1, Some(d)),
                None => State::Done(1, None),
            };
            state.insert(node, done);
            stack.pop();
        }
    }
    let mut longest: Vec<&'a str> = Vec::new();
    let start = state
        .iter()
        .filter_map(|(n, s)| match s {
            State::Done(len, _) => Some((*len, *n)),
            State::Open => None,
        })
        .max();
    let mut at = start.map(|(_, n)| n);
    while let Some(n) = at {
        longest.push(n);
        at = match state.get(n) {
            Some(State::Done(_, next)) => *next,
            _ => None,
        };
    }
    Ok(longest)
}
