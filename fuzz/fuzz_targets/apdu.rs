//! ISO/IEC 7816-4 command APDUs: `CommandApdu::parse`, `classify_select` and the R-APDU
//! trailer helpers, on arbitrary bytes.
//!
//! Checks, for every C-APDU that parses (ISO/IEC 7816-4 §5.1): `emit_into` reproduces the input
//! exactly and `buffer_len` says so; a buffer one byte short is refused; the case agrees with
//! the fields; Ne is never 0. For `SELECT` by DF name (§11.2.2): an accepted name is the data
//! field, 1 to 16 bytes, the P2 is one of the accepted ones, and a refusal maps to 6A86 or
//! 6700. The R-APDU helpers split any response into data and the last two bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use libnci::apdu::{
    classify_select, select_by_df_name, split_response, ApduCase, ApduError, CommandApdu,
    SelectError, StatusWord, MAX_DF_NAME_LEN,
};

fuzz_target!(|data: &[u8]| {
    if let Some((body, sw)) = split_response(data) {
        assert_eq!(body.len() + 2, data.len());
        assert_eq!(sw.to_bytes(), [data[data.len() - 2], data[data.len() - 1]]);
        assert_eq!(StatusWord::from_response(data), Some(sw));
    } else {
        assert!(data.len() < 2);
    }

    let apdu = match CommandApdu::parse(data) {
        Ok(apdu) => apdu,
        Err(err) => {
            let _ = err.to_string();
            return;
        }
    };
    assert_ne!(apdu.le, Some(0), "Ne is never 0");
    let case = apdu.case();
    match case {
        ApduCase::Case1 => assert!(apdu.data.is_empty() && apdu.le.is_none() && !apdu.extended),
        ApduCase::Case2Short | ApduCase::Case3Short | ApduCase::Case4Short => {
            assert!(!apdu.extended)
        }
        ApduCase::Case2Extended | ApduCase::Case3Extended | ApduCase::Case4Extended => {
            assert!(apdu.extended)
        }
    }
    assert_eq!(apdu.buffer_len(), Ok(data.len()), "{case:?}");
    let mut out = vec![0u8; data.len()];
    assert_eq!(apdu.emit_into(&mut out), Ok(data.len()));
    assert_eq!(out, data, "{case:?} does not round-trip");
    assert!(matches!(
        apdu.emit_into(&mut out[..data.len() - 1]),
        Err(ApduError::BufferTooSmall { .. })
    ));

    match classify_select(&apdu) {
        None => {
            assert!(apdu.cla & 0x80 != 0 || apdu.ins != 0xA4 || apdu.p1 != 0x04);
            assert_eq!(select_by_df_name(&apdu), None);
        }
        Some(Ok(select)) => {
            assert_eq!(select.name, apdu.data);
            assert!((1..=MAX_DF_NAME_LEN).contains(&select.name.len()));
            assert_eq!(apdu.p2 & 0xF1, 0x00, "P2 {:02X} accepted", apdu.p2);
            assert_eq!(select.is_next_occurrence(), apdu.p2 & 0x02 != 0);
            assert_eq!(select_by_df_name(&apdu), Some(select));
        }
        Some(Err(err)) => {
            let sw = err.status_word();
            match err {
                SelectError::UnsupportedP2(p2) => {
                    assert_eq!(p2, apdu.p2);
                    assert_eq!(sw, StatusWord::INCORRECT_P1_P2);
                }
                SelectError::NameLength(len) => {
                    assert_eq!(len, apdu.data.len());
                    assert_eq!(sw, StatusWord::WRONG_LENGTH);
                }
            }
            let _ = err.to_string();
            assert_eq!(select_by_df_name(&apdu), None);
        }
    }
});
