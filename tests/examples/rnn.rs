//! The recurrent examples' training runs, checked against the results they promise.
//!
//! Each example file is compiled into this test as a module and its `run` function is
//! called with the example's own settings, so the test exercises exactly the code a
//! reader runs (only `main`, which prints, is left out).

#[allow(dead_code)]
#[path = "../../examples/06_rnn_sunspots.rs"]
mod rnn_sunspots;

#[allow(dead_code)]
#[path = "../../examples/07_birnn_fill_blank.rs"]
mod birnn_fill_blank;

#[test]
fn every_recurrent_forecaster_beats_persistence_on_1950_2008() {
    let report = rnn_sunspots::run(rnn_sunspots::EPOCHS, rnn_sunspots::SEED).unwrap();
    // Targets 1720-1949 (20-year windows from 1700), then 1950-2008.
    assert_eq!(report.samples, (230, 59));
    // The persistence forecast does not depend on training: its RMSE is fixed by the data.
    assert!((report.persistence - 33.175).abs() < 1e-3, "persistence {}", report.persistence);
    // A real margin: each network at least 20 % below persistence.
    for (name, rmse) in [("SimpleRnn", report.rnn), ("Lstm", report.lstm), ("Gru", report.gru)] {
        assert!(rmse < 0.8 * report.persistence, "{name}: RMSE {rmse} vs persistence {}", report.persistence);
    }
}

#[test]
fn the_bidirectional_gru_fills_in_10_points_more_blanks() {
    let report = birnn_fill_blank::run(birnn_fill_blank::EPOCHS, birnn_fill_blank::SEED, false).unwrap();
    assert_eq!(report.words, (3491, 873));
    let (bi, uni) = (report.bidirectional_accuracy, report.unidirectional_accuracy);
    assert!(bi >= uni + 0.10, "bidirectional {bi} vs left-to-right {uni}");
    // Both learn something beyond always guessing the most common letter.
    assert!(uni > report.most_common_letter_accuracy, "{report:?}");
}
