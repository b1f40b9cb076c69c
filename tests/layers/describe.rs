//! `Describe` of graph networks whose recurrent layers take an initial state and give
//! their final state as values (`dec(t, h, c)`, `(e, h, c) = enc(x)`): the statements
//! list those values and the text shows their shapes.
use nn_core::describe::{Describe, Statement};

use crate::rnn_state::{GruStates, LstmStates};

#[test]
fn recurrent_states_are_values_of_the_description() {
    let d = LstmStates::DESCRIPTION;
    assert_eq!(d.value_names, ["x", "t", "e", "h", "c", "d", "y", "z"]);
    assert_eq!(d.statements[0], Statement::Apply { layer: 0, input: 0, initial: &[], output: 2, states: &[3, 4] });
    assert_eq!(d.statements[1], Statement::Apply { layer: 1, input: 1, initial: &[3, 4], output: 5, states: &[] });
    // `c` is read by the decoder and the dense head, `h` by the decoder.
    assert_eq!((d.uses(3), d.uses(4)), (1, 2));
    assert_eq!(
        d.to_string(),
        "LstmStates
input x: [4, 2], t: [4, 3]
(e, h, c) = enc(x): Lstm -> e: [4, 3], h: [3], c: [3]
d = dec(t, h, c): Lstm -> d: [4, 3]
y = add(e, d) -> y: [4, 3]
z = head(c): Dense -> z: [2]
output y, z
"
    );
    // Two bidirectional layers: `h` holds one row per layer and direction.
    assert_eq!(
        GruStates::DESCRIPTION.to_string(),
        "GruStates
input x: [5, 2], t: [4, 3]
(_, h) = enc(x): Gru -> _: [6], h: [4, 3]
y = dec(t, h): Gru -> y: [4, 6]
output y, h
"
    );
}
