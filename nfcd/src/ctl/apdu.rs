//! One-line descriptions of APDUs for `monitor` and `tap`.
//!
//! Contract: display only. Command APDUs are parsed with [`libnci::apdu::CommandApdu`] and a
//! `SELECT` by DF name is shown with its AID ([`libnci::apdu::classify_select`], ISO/IEC
//! 7816-4 §11.2.2); other commands by their instruction name where ISO/IEC 7816-4 §5.4 (table
//! 4, interindustry class) or EMV Book 3 §6.5 (proprietary class `8x`) names it. Responses
//! are shown by their status word (ISO/IEC 7816-4 §5.6, tables 5 and 6) and data length.
//! Malformed bytes are described, never a reason to fail.

use libnci::apdu::{classify_select, split_response, CommandApdu, Occurrence, StatusWord};

use super::value::hex;

/// The AID of a well-formed `SELECT` by DF name, if `apdu` is one.
pub fn select_aid(apdu: &[u8]) -> Option<Vec<u8>> {
    let command = CommandApdu::parse(apdu).ok()?;
    classify_select(&command)?.ok().map(|s| s.name.to_vec())
}

/// E.g. `SELECT A0000000041010`, `READ RECORD P1=01 P2=0C Le=256`,
/// `CLA=80 INS=EE P1=00 P2=00 Lc=12`.
pub fn describe_command(apdu: &[u8]) -> String {
    let command = match CommandApdu::parse(apdu) {
        Ok(c) => c,
        Err(err) => return format!("malformed C-APDU ({err})"),
    };
    match classify_select(&command) {
        Some(Ok(select)) => {
            let next = match select.occurrence {
                Occurrence::First => "",
                Occurrence::Next => " (next occurrence)",
            };
            return format!("SELECT {}{next}", hex(select.name));
        }
        Some(Err(err)) => return format!("SELECT, refused: {err}"),
        None => {}
    }
    let mut text = match instruction_name(command.cla, command.ins) {
        Some(name) => format!("{name} P1={:02X} P2={:02X}", command.p1, command.p2),
        None => format!(
            "CLA={:02X} INS={:02X} P1={:02X} P2={:02X}",
            command.cla, command.ins, command.p1, command.p2
        ),
    };
    if !command.data.is_empty() {
        text.push_str(&format!(" Lc={}", command.data.len()));
    }
    if let Some(ne) = command.le {
        text.push_str(&format!(" Le={ne}"));
    }
    text
}

/// Names of the instructions a reader of payment or transit cards commonly sends.
fn instruction_name(cla: u8, ins: u8) -> Option<&'static str> {
    let interindustry = cla & 0x80 == 0;
    let name = match (interindustry, ins) {
        // ISO/IEC 7816-4 §5.4, table 4.
        (true, 0x0E) => "ERASE BINARY",
        (true, 0x20) => "VERIFY",
        (true, 0x22) => "MANAGE SECURITY ENVIRONMENT",
        (true, 0x24) => "CHANGE REFERENCE DATA",
        (true, 0x2A) => "PERFORM SECURITY OPERATION",
        (true, 0x70) => "MANAGE CHANNEL",
        (true, 0x82) => "EXTERNAL AUTHENTICATE",
        (true, 0x84) => "GET CHALLENGE",
        (true, 0x88) => "INTERNAL AUTHENTICATE",
        (true, 0xA4) => "SELECT",
        (true, 0xB0) => "READ BINARY",
        (true, 0xB2) => "READ RECORD",
        (true, 0xC0) => "GET RESPONSE",
        (true, 0xC2) => "ENVELOPE",
        (true, 0xCA) => "GET DATA",
        (true, 0xD6) => "UPDATE BINARY",
        (true, 0xDA) => "PUT DATA",
        (true, 0xDC) => "UPDATE RECORD",
        (true, 0xE2) => "APPEND RECORD",
        // EMV Book 3 §6.5 (CLA 80).
        (false, 0xA8) => "GET PROCESSING OPTIONS",
        (false, 0xAE) => "GENERATE AC",
        (false, 0xCA) => "GET DATA",
        _ => return None,
    };
    Some(name)
}

/// What a status word means, where ISO/IEC 7816-4 §5.6 (tables 5 and 6) says.
pub fn sw_meaning(sw: StatusWord) -> Option<String> {
    let fixed = match sw {
        StatusWord::NO_ERROR => "ok",
        StatusWord::SELECTED_FILE_DEACTIVATED => "selected file deactivated",
        StatusWord::EXECUTION_ERROR => "execution error",
        StatusWord::WRONG_LENGTH => "wrong length",
        StatusWord::LOGICAL_CHANNEL_NOT_SUPPORTED => "logical channel not supported",
        StatusWord(0x6882) => "secure messaging not supported",
        StatusWord::SECURITY_STATUS_NOT_SATISFIED => "security status not satisfied",
        StatusWord(0x6983) => "authentication method blocked",
        StatusWord(0x6984) => "reference data not usable",
        StatusWord::CONDITIONS_NOT_SATISFIED => "conditions of use not satisfied",
        StatusWord(0x6986) => "command not allowed",
        StatusWord::INCORRECT_DATA => "incorrect data",
        StatusWord::FUNCTION_NOT_SUPPORTED => "function not supported",
        StatusWord::FILE_NOT_FOUND => "file or application not found",
        StatusWord(0x6A83) => "record not found",
        StatusWord::INCORRECT_P1_P2 => "incorrect P1-P2",
        StatusWord::REFERENCED_DATA_NOT_FOUND => "referenced data not found",
        StatusWord::WRONG_P1_P2 => "wrong P1-P2",
        StatusWord::INS_NOT_SUPPORTED => "instruction not supported",
        StatusWord::CLA_NOT_SUPPORTED => "class not supported",
        StatusWord::NO_PRECISE_DIAGNOSIS => "no precise diagnosis",
        _ => "",
    };
    if !fixed.is_empty() {
        return Some(fixed.to_owned());
    }
    match (sw.sw1(), sw.sw2()) {
        (0x61, n) => Some(format!("ok, {n} more bytes")),
        (0x63, n) if n & 0xF0 == 0xC0 => Some(format!("warning, counter {}", n & 0x0F)),
        (0x62, _) => Some("warning, state unchanged".to_owned()),
        (0x63, _) => Some("warning, state changed".to_owned()),
        (0x64, _) => Some("execution error, state unchanged".to_owned()),
        (0x65, _) => Some("execution error, state changed".to_owned()),
        (0x6C, n) => Some(format!("wrong Le, {n} bytes available")),
        _ => None,
    }
}

/// E.g. `9000 ok, 32 bytes`, `6A82 file or application not found`, `malformed R-APDU (1 byte)`.
pub fn describe_response(apdu: &[u8]) -> String {
    let Some((data, sw)) = split_response(apdu) else {
        return format!(
            "malformed R-APDU ({} byte{})",
            apdu.len(),
            if apdu.len() == 1 { "" } else { "s" }
        );
    };
    let mut text = sw.to_string();
    if let Some(meaning) = sw_meaning(sw) {
        text.push(' ');
        text.push_str(&meaning);
    }
    match data.len() {
        0 => {}
        1 => text.push_str(", 1 byte"),
        n => text.push_str(&format!(", {n} bytes")),
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn select_by_name() {
        // SELECT 2PAY.SYS.DDF01 (the EMV contactless PPSE), Le=00.
        let ppse = [
            0x00, 0xA4, 0x04, 0x00, 0x0E, 0x32, 0x50, 0x41, 0x59, 0x2E, 0x53, 0x59, 0x53, 0x2E,
            0x44, 0x44, 0x46, 0x30, 0x31, 0x00,
        ];
        assert_eq!(
            describe_command(&ppse),
            "SELECT 325041592E5359532E4444463031"
        );
        assert_eq!(select_aid(&ppse).map(|a| a.len()), Some(14));
        // Next occurrence (P2 = 02).
        let next = [0x00, 0xA4, 0x04, 0x02, 0x05, 0xA0, 0x00, 0x00, 0x00, 0x04];
        assert_eq!(
            describe_command(&next),
            "SELECT A000000004 (next occurrence)"
        );
        // Last occurrence (P2 = 01) is not one the daemon answers.
        let last = [0x00, 0xA4, 0x04, 0x01, 0x05, 0xA0, 0x00, 0x00, 0x00, 0x04];
        assert!(describe_command(&last).starts_with("SELECT, refused: "));
        assert_eq!(select_aid(&last), None);
    }

    #[test]
    fn other_commands() {
        // READ RECORD record 1 of SFI 1, Le=00 (256).
        assert_eq!(
            describe_command(&[0x00, 0xB2, 0x01, 0x0C, 0x00]),
            "READ RECORD P1=01 P2=0C Le=256"
        );
        // GET PROCESSING OPTIONS with an empty PDOL (83 00).
        assert_eq!(
            describe_command(&[0x80, 0xA8, 0x00, 0x00, 0x02, 0x83, 0x00, 0x00]),
            "GET PROCESSING OPTIONS P1=00 P2=00 Lc=2 Le=256"
        );
        assert_eq!(
            describe_command(&[0x90, 0x5A, 0x00, 0x00, 0x03, 0x01, 0x02, 0x03]),
            "CLA=90 INS=5A P1=00 P2=00 Lc=3"
        );
        assert_eq!(
            describe_command(&[0x00, 0xA4]),
            "malformed C-APDU (C-APDU of 2 bytes is shorter than its 4-byte header)"
        );
        assert_eq!(select_aid(&[0x00]), None);
    }

    #[test]
    fn responses() {
        assert_eq!(
            describe_response(&[0x6F, 0x00]),
            "6F00 no precise diagnosis"
        );
        assert_eq!(
            describe_response(&[0x01, 0x02, 0x90, 0x00]),
            "9000 ok, 2 bytes"
        );
        assert_eq!(describe_response(&[0x61, 0x10]), "6110 ok, 16 more bytes");
        assert_eq!(describe_response(&[0x63, 0xC2]), "63C2 warning, counter 2");
        assert_eq!(describe_response(&[0x91, 0x00]), "9100");
        assert_eq!(describe_response(&[0x90]), "malformed R-APDU (1 byte)");
        assert_eq!(describe_response(&[]), "malformed R-APDU (0 bytes)");
    }
}
