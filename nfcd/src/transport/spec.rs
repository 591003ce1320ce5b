//! Transport specifications: the `--transport` / `[daemon] transport` strings.
//!
//! Contract: parse and print the text form only; nothing here opens a device or checks that
//! one exists. Accepted forms:
//!
//! ```text
//! i2c:/dev/i2c-1[@0x28],irq=CHIP:LINE[,ven=CHIP:LINE]   PN7150 on I²C (UM10936 §3)
//! uart:/dev/ttyUSB0[@115200]                           NCI over a tty or pty
//! tcp:HOST:PORT                                        NCI over TCP ([v6-address]:PORT)
//! sim | sim:pn7150 | sim:nci2                          in-process virtual controller
//! sim:pn7150@i2c[:100k|400k|3.4m]                      the same behind a simulated I²C bus
//! ```
//!
//! GPIO lines are `CHIP:LINE` where `CHIP` is a gpiochip name (`gpiochip0`) or a device path
//! (`/dev/gpiochip0`) and `LINE` is a line offset (`23`) or a line name (`GPIO23`).
//! Every error says which part is wrong and why.

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

pub use libnci::sim::BusSpeed;

/// PN7150 default 7-bit I²C address: I2C_ADDR0 = I2C_ADDR1 = 0 (UM10936 §3.1, Table 3).
pub const PN7150_DEFAULT_I2C_ADDRESS: u16 = 0x28;

/// UART speed used when the spec gives none.
pub const DEFAULT_BAUD: u32 = 115_200;

/// Baud rates the UART transport can program through termios on Linux.
pub const SUPPORTED_BAUDS: &[u32] = &[
    9_600, 19_200, 38_400, 57_600, 115_200, 230_400, 460_800, 500_000, 576_000, 921_600, 1_000_000,
    1_152_000, 1_500_000, 2_000_000, 2_500_000, 3_000_000, 3_500_000, 4_000_000,
];

/// Which transport to open, and with what parameters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TransportSpec {
    /// I²C controller with IRQ and VEN GPIO lines (PN7150).
    I2c(I2cSpec),
    /// NCI over a serial line or pseudo-terminal.
    Uart(UartSpec),
    /// NCI over TCP.
    Tcp(TcpSpec),
    /// The in-process virtual controller from libnci.
    Sim(SimProfile),
    /// The in-process virtual controller behind a simulated PN7150 I²C slave, driven by the
    /// real I²C transport (IRQ, header-then-payload reads, NACK retries, VEN resets).
    SimI2c(SimI2cSpec),
}

/// Parameters of the `sim:PROFILE@i2c` transport.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SimI2cSpec {
    /// The controller simulated.
    pub profile: SimProfile,
    /// The I²C clock the bus model moves packets at (Fast-mode, 400 kHz, unless given).
    pub speed: BusSpeed,
}

/// Parameters of the I²C transport.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct I2cSpec {
    /// The i2c-dev character device, e.g. `/dev/i2c-1`.
    pub device: PathBuf,
    /// 7-bit slave address (PN7150: 0x28..=0x2B, UM10936 §3.1).
    pub address: u16,
    /// The controller's IRQ output (high while a packet waits to be read,
    /// UM10936 §3, read sequence).
    pub irq: GpioLineSpec,
    /// The controller's VEN input (low = hard power-down and reset). Optional: boards
    /// that tie VEN high cannot be hard-reset.
    pub ven: Option<GpioLineSpec>,
}

/// Parameters of the UART transport.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UartSpec {
    /// The tty or pty device, e.g. `/dev/ttyUSB0` or `/dev/pts/3`.
    pub device: PathBuf,
    /// Line speed in baud, one of [`SUPPORTED_BAUDS`].
    pub baud: u32,
}

/// Parameters of the TCP transport.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TcpSpec {
    /// Host name or IP address (IPv6 without brackets).
    pub host: String,
    /// TCP port, 1..=65535.
    pub port: u16,
}

/// Which virtual controller the `sim` transport emulates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SimProfile {
    /// PN7150 speaking NCI 1.0 (the default).
    Pn7150,
    /// A generic NCI 2.0 controller.
    Nci2,
}

/// One GPIO line on one chip.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GpioLineSpec {
    /// Chip name (`gpiochip0`) or device path (`/dev/gpiochip0`).
    pub chip: String,
    /// Line on that chip.
    pub line: GpioLine,
}

/// A GPIO line by offset or by name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GpioLine {
    /// Line offset on the chip.
    Offset(u32),
    /// Line name as the kernel reports it (`gpioinfo`), e.g. `GPIO23`.
    Name(String),
}

impl GpioLineSpec {
    /// Path of the chip's character device: `CHIP` if it contains a `/`, else `/dev/CHIP`.
    pub fn chip_path(&self) -> PathBuf {
        if self.chip.contains('/') {
            PathBuf::from(&self.chip)
        } else {
            PathBuf::from("/dev").join(&self.chip)
        }
    }
}

/// A transport spec that does not parse; the message says what is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransportSpecError(String);

impl TransportSpecError {
    fn new(msg: impl Into<String>) -> Self {
        TransportSpecError(msg.into())
    }
}

impl fmt::Display for TransportSpecError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for TransportSpecError {}

impl FromStr for TransportSpec {
    type Err = TransportSpecError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        if s.is_empty() {
            return Err(TransportSpecError::new(
                "empty transport (expected i2c:..., uart:..., tcp:... or sim)",
            ));
        }
        let (kind, rest) = match s.split_once(':') {
            Some((kind, rest)) => (kind, Some(rest)),
            None => (s, None),
        };
        match (kind, rest) {
            ("i2c", Some(rest)) => parse_i2c(rest).map(TransportSpec::I2c),
            ("uart", Some(rest)) => parse_uart(rest).map(TransportSpec::Uart),
            ("tcp", Some(rest)) => parse_tcp(rest).map(TransportSpec::Tcp),
            ("sim", Some(rest)) if rest.contains('@') => {
                parse_sim_i2c(rest).map(TransportSpec::SimI2c)
            }
            ("sim", rest) => parse_sim(rest).map(TransportSpec::Sim),
            ("i2c" | "uart" | "tcp", None) => Err(TransportSpecError::new(format!(
                "{kind}: missing parameters after '{kind}:'"
            ))),
            _ => Err(TransportSpecError::new(format!(
                "unknown transport '{kind}' (expected i2c, uart, tcp or sim)"
            ))),
        }
    }
}

fn parse_i2c(rest: &str) -> Result<I2cSpec, TransportSpecError> {
    let mut parts = rest.split(',');
    let head = parts.next().unwrap_or_default();
    let (device, address) = match head.rsplit_once('@') {
        Some((device, addr)) => (device, parse_i2c_address(addr)?),
        None => (head, PN7150_DEFAULT_I2C_ADDRESS),
    };
    if device.is_empty() {
        return Err(TransportSpecError::new(
            "i2c: missing device path (e.g. i2c:/dev/i2c-1@0x28,irq=gpiochip0:23)",
        ));
    }
    let mut irq = None;
    let mut ven = None;
    for option in parts {
        let Some((key, value)) = option.split_once('=') else {
            return Err(TransportSpecError::new(format!(
                "i2c: option '{option}' is not KEY=VALUE (expected irq=CHIP:LINE or ven=CHIP:LINE)"
            )));
        };
        let slot = match key {
            "irq" => &mut irq,
            "ven" => &mut ven,
            _ => {
                return Err(TransportSpecError::new(format!(
                    "i2c: unknown option '{key}' (expected irq or ven)"
                )))
            }
        };
        if slot.is_some() {
            return Err(TransportSpecError::new(format!(
                "i2c: option '{key}' is given twice"
            )));
        }
        *slot = Some(parse_gpio(key, value)?);
    }
    let Some(irq) = irq else {
        return Err(TransportSpecError::new(
            "i2c: missing irq=CHIP:LINE (the controller's IRQ output, e.g. irq=gpiochip0:23)",
        ));
    };
    if ven.as_ref() == Some(&irq) {
        return Err(TransportSpecError::new(
            "i2c: irq and ven name the same GPIO line",
        ));
    }
    Ok(I2cSpec {
        device: PathBuf::from(device),
        address,
        irq,
        ven,
    })
}

fn parse_i2c_address(text: &str) -> Result<u16, TransportSpecError> {
    let digits = text
        .strip_prefix("0x")
        .or_else(|| text.strip_prefix("0X"))
        .unwrap_or(text);
    let address = if !digits.is_empty() && digits.len() <= 4 {
        u16::from_str_radix(digits, 16).ok()
    } else {
        None
    };
    let Some(address) = address else {
        return Err(TransportSpecError::new(format!(
            "i2c: address '{text}' is not a hex number (e.g. 0x28)"
        )));
    };
    // 0x00..=0x07 and 0x78..=0x7F are reserved I²C addresses; the PN7150 uses 0x28..=0x2B.
    if !(0x08..=0x77).contains(&address) {
        return Err(TransportSpecError::new(format!(
            "i2c: address {address:#04x} is outside the 7-bit range 0x08..=0x77"
        )));
    }
    Ok(address)
}

fn parse_gpio(key: &str, value: &str) -> Result<GpioLineSpec, TransportSpecError> {
    let Some((chip, line)) = value.rsplit_once(':') else {
        return Err(TransportSpecError::new(format!(
            "i2c: {key} '{value}' is not CHIP:LINE (e.g. {key}=gpiochip0:23 or {key}=gpiochip0:GPIO23)"
        )));
    };
    if chip.is_empty() {
        return Err(TransportSpecError::new(format!(
            "i2c: {key} '{value}' has no GPIO chip before ':'"
        )));
    }
    if line.is_empty() {
        return Err(TransportSpecError::new(format!(
            "i2c: {key} '{value}' has no line offset or name after ':'"
        )));
    }
    let line = if line.bytes().all(|b| b.is_ascii_digit()) {
        match line.parse::<u32>() {
            Ok(offset) => GpioLine::Offset(offset),
            Err(_) => {
                return Err(TransportSpecError::new(format!(
                    "i2c: {key} line offset '{line}' is too large"
                )))
            }
        }
    } else if line.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(TransportSpecError::new(format!(
            "i2c: {key} line name '{line}' contains white space"
        )));
    } else {
        GpioLine::Name(line.to_owned())
    };
    Ok(GpioLineSpec {
        chip: chip.to_owned(),
        line,
    })
}

fn parse_uart(rest: &str) -> Result<UartSpec, TransportSpecError> {
    let (device, baud) = match rest.rsplit_once('@') {
        Some((device, baud)) => {
            let Ok(baud) = baud.parse::<u32>() else {
                return Err(TransportSpecError::new(format!(
                    "uart: baud rate '{baud}' is not a number"
                )));
            };
            if !SUPPORTED_BAUDS.contains(&baud) {
                let list: Vec<String> = SUPPORTED_BAUDS.iter().map(u32::to_string).collect();
                return Err(TransportSpecError::new(format!(
                    "uart: baud rate {baud} is not supported (use one of {})",
                    list.join(", ")
                )));
            }
            (device, baud)
        }
        None => (rest, DEFAULT_BAUD),
    };
    if device.is_empty() {
        return Err(TransportSpecError::new(
            "uart: missing device path (e.g. uart:/dev/ttyUSB0@115200)",
        ));
    }
    Ok(UartSpec {
        device: PathBuf::from(device),
        baud,
    })
}

fn parse_tcp(rest: &str) -> Result<TcpSpec, TransportSpecError> {
    let (host, port) = if let Some(bracketed) = rest.strip_prefix('[') {
        let Some((host, after)) = bracketed.split_once(']') else {
            return Err(TransportSpecError::new(format!(
                "tcp: '{rest}' has '[' without a closing ']'"
            )));
        };
        let Some(port) = after.strip_prefix(':') else {
            return Err(TransportSpecError::new(format!(
                "tcp: expected [HOST]:PORT, got '{rest}'"
            )));
        };
        (host, port)
    } else {
        let Some((host, port)) = rest.rsplit_once(':') else {
            return Err(TransportSpecError::new(format!(
                "tcp: expected HOST:PORT, got '{rest}'"
            )));
        };
        if host.contains(':') {
            return Err(TransportSpecError::new(format!(
                "tcp: an IPv6 address must be in brackets, e.g. tcp:[{host}]:{port}"
            )));
        }
        (host, port)
    };
    if host.is_empty() {
        return Err(TransportSpecError::new(format!(
            "tcp: missing host in '{rest}'"
        )));
    }
    let port = match port.parse::<u16>() {
        Ok(port) if port != 0 => port,
        _ => {
            return Err(TransportSpecError::new(format!(
                "tcp: port '{port}' is not a number between 1 and 65535"
            )))
        }
    };
    Ok(TcpSpec {
        host: host.to_owned(),
        port,
    })
}

fn parse_sim(rest: Option<&str>) -> Result<SimProfile, TransportSpecError> {
    match rest {
        None | Some("pn7150") => Ok(SimProfile::Pn7150),
        Some("nci2") => Ok(SimProfile::Nci2),
        Some(other) => Err(TransportSpecError::new(format!(
            "sim: unknown profile '{other}' (expected pn7150 or nci2)"
        ))),
    }
}

/// `PROFILE@i2c[:SPEED]`.
fn parse_sim_i2c(rest: &str) -> Result<SimI2cSpec, TransportSpecError> {
    let (profile, bus) = rest.split_once('@').unwrap_or((rest, ""));
    let profile = parse_sim(Some(profile))?;
    let speed = match bus.split_once(':') {
        Some(("i2c", speed)) => parse_i2c_speed(speed)?,
        None if bus == "i2c" => BusSpeed::Fast,
        _ => {
            return Err(TransportSpecError::new(format!(
            "sim: unknown bus '{bus}' (expected i2c, e.g. sim:pn7150@i2c or sim:pn7150@i2c:400k)"
        )))
        }
    };
    Ok(SimI2cSpec { profile, speed })
}

/// An I²C clock by the name used on command lines: `100k` (Standard-mode), `400k`
/// (Fast-mode) or `3.4m` (High-speed mode), I²C-bus specification UM10204.
pub fn parse_i2c_speed(text: &str) -> Result<BusSpeed, TransportSpecError> {
    match text {
        "100k" => Ok(BusSpeed::Standard),
        "400k" => Ok(BusSpeed::Fast),
        "3.4m" => Ok(BusSpeed::HighSpeed),
        other => Err(TransportSpecError::new(format!(
            "unknown I²C speed '{other}' (expected 100k, 400k or 3.4m)"
        ))),
    }
}

/// The name [`parse_i2c_speed`] takes for `speed`.
pub fn i2c_speed_name(speed: BusSpeed) -> &'static str {
    match speed {
        BusSpeed::Standard => "100k",
        BusSpeed::Fast => "400k",
        BusSpeed::HighSpeed => "3.4m",
    }
}

impl fmt::Display for GpioLineSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.line {
            GpioLine::Offset(offset) => write!(f, "{}:{offset}", self.chip),
            GpioLine::Name(name) => write!(f, "{}:{name}", self.chip),
        }
    }
}

impl fmt::Display for SimProfile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SimProfile::Pn7150 => "pn7150",
            SimProfile::Nci2 => "nci2",
        })
    }
}

/// Prints the canonical form, which parses back to the same value.
impl fmt::Display for TransportSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TransportSpec::I2c(i2c) => {
                write!(
                    f,
                    "i2c:{}@{:#04x},irq={}",
                    i2c.device.display(),
                    i2c.address,
                    i2c.irq
                )?;
                if let Some(ven) = &i2c.ven {
                    write!(f, ",ven={ven}")?;
                }
                Ok(())
            }
            TransportSpec::Uart(uart) => {
                write!(f, "uart:{}@{}", uart.device.display(), uart.baud)
            }
            TransportSpec::Tcp(tcp) if tcp.host.contains(':') => {
                write!(f, "tcp:[{}]:{}", tcp.host, tcp.port)
            }
            TransportSpec::Tcp(tcp) => write!(f, "tcp:{}:{}", tcp.host, tcp.port),
            TransportSpec::Sim(profile) => write!(f, "sim:{profile}"),
            TransportSpec::SimI2c(spec) => {
                write!(f, "sim:{}@i2c:{}", spec.profile, i2c_speed_name(spec.speed))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Result<TransportSpec, String> {
        s.parse::<TransportSpec>().map_err(|e| e.to_string())
    }

    fn gpio(chip: &str, offset: u32) -> GpioLineSpec {
        GpioLineSpec {
            chip: chip.into(),
            line: GpioLine::Offset(offset),
        }
    }

    #[test]
    fn i2c_raspberry_pi_pn7150() {
        assert_eq!(
            parse("i2c:/dev/i2c-1@0x28,irq=gpiochip0:23,ven=gpiochip0:24"),
            Ok(TransportSpec::I2c(I2cSpec {
                device: "/dev/i2c-1".into(),
                address: 0x28,
                irq: gpio("gpiochip0", 23),
                ven: Some(gpio("gpiochip0", 24)),
            }))
        );
    }

    #[test]
    fn i2c_lines_by_name_default_address_no_ven() {
        assert_eq!(
            parse("i2c:/dev/i2c-3,irq=/dev/gpiochip4:GPIO23"),
            Ok(TransportSpec::I2c(I2cSpec {
                device: "/dev/i2c-3".into(),
                address: PN7150_DEFAULT_I2C_ADDRESS,
                irq: GpioLineSpec {
                    chip: "/dev/gpiochip4".into(),
                    line: GpioLine::Name("GPIO23".into()),
                },
                ven: None,
            }))
        );
        let chip = gpio("gpiochip4", 1);
        assert_eq!(chip.chip_path(), PathBuf::from("/dev/gpiochip4"));
    }

    #[test]
    fn i2c_address_forms() {
        for (text, want) in [("0x2b", 0x2B), ("0X29", 0x29), ("2a", 0x2A)] {
            let spec = parse(&format!("i2c:/dev/i2c-1@{text},irq=gpiochip0:23"));
            assert!(
                matches!(spec, Ok(TransportSpec::I2c(I2cSpec { address, .. })) if address == want),
                "{text}"
            );
        }
    }

    #[test]
    fn i2c_errors_say_what_is_wrong() {
        let cases = [
            (
                "i2c:/dev/i2c-1@0x2G,irq=gpiochip0:23",
                "i2c: address '0x2G' is not a hex number (e.g. 0x28)",
            ),
            (
                "i2c:/dev/i2c-1@0x80,irq=gpiochip0:23",
                "i2c: address 0x80 is outside the 7-bit range 0x08..=0x77",
            ),
            ("i2c:/dev/i2c-1@,irq=gpiochip0:23", "i2c: address '' is not a hex number (e.g. 0x28)"),
            (
                "i2c:/dev/i2c-1@0x28",
                "i2c: missing irq=CHIP:LINE (the controller's IRQ output, e.g. irq=gpiochip0:23)",
            ),
            (
                "i2c:/dev/i2c-1,irq=gpiochip0",
                "i2c: irq 'gpiochip0' is not CHIP:LINE (e.g. irq=gpiochip0:23 or irq=gpiochip0:GPIO23)",
            ),
            ("i2c:/dev/i2c-1,irq=:23", "i2c: irq ':23' has no GPIO chip before ':'"),
            (
                "i2c:/dev/i2c-1,irq=gpiochip0:",
                "i2c: irq 'gpiochip0:' has no line offset or name after ':'",
            ),
            (
                "i2c:/dev/i2c-1,irq=gpiochip0:99999999999",
                "i2c: irq line offset '99999999999' is too large",
            ),
            (
                "i2c:/dev/i2c-1,irq=gpiochip0:23,irq=gpiochip0:25",
                "i2c: option 'irq' is given twice",
            ),
            (
                "i2c:/dev/i2c-1,irq=gpiochip0:23,reset=gpiochip0:24",
                "i2c: unknown option 'reset' (expected irq or ven)",
            ),
            (
                "i2c:/dev/i2c-1,irq",
                "i2c: option 'irq' is not KEY=VALUE (expected irq=CHIP:LINE or ven=CHIP:LINE)",
            ),
            (
                "i2c:/dev/i2c-1,irq=gpiochip0:23,ven=gpiochip0:23",
                "i2c: irq and ven name the same GPIO line",
            ),
            (
                "i2c:@0x28,irq=gpiochip0:23",
                "i2c: missing device path (e.g. i2c:/dev/i2c-1@0x28,irq=gpiochip0:23)",
            ),
            ("i2c", "i2c: missing parameters after 'i2c:'"),
        ];
        for (text, want) in cases {
            assert_eq!(parse(text), Err(want.to_string()), "{text}");
        }
    }

    #[test]
    fn uart_forms() {
        assert_eq!(
            parse("uart:/dev/ttyUSB0"),
            Ok(TransportSpec::Uart(UartSpec {
                device: "/dev/ttyUSB0".into(),
                baud: 115_200
            }))
        );
        assert_eq!(
            parse("uart:/dev/pts/7@921600"),
            Ok(TransportSpec::Uart(UartSpec {
                device: "/dev/pts/7".into(),
                baud: 921_600
            }))
        );
    }

    #[test]
    fn uart_errors() {
        assert_eq!(
            parse("uart:/dev/ttyUSB0@fast"),
            Err("uart: baud rate 'fast' is not a number".into())
        );
        let err = parse("uart:/dev/ttyUSB0@12345").err().unwrap_or_default();
        assert!(
            err.starts_with("uart: baud rate 12345 is not supported (use one of 9600, 19200"),
            "{err}"
        );
        assert_eq!(
            parse("uart:@115200"),
            Err("uart: missing device path (e.g. uart:/dev/ttyUSB0@115200)".into())
        );
    }

    #[test]
    fn tcp_forms() {
        assert_eq!(
            parse("tcp:localhost:4000"),
            Ok(TransportSpec::Tcp(TcpSpec {
                host: "localhost".into(),
                port: 4000
            }))
        );
        assert_eq!(
            parse("tcp:[::1]:4000"),
            Ok(TransportSpec::Tcp(TcpSpec {
                host: "::1".into(),
                port: 4000
            }))
        );
    }

    #[test]
    fn tcp_errors() {
        let cases = [
            ("tcp:localhost", "tcp: expected HOST:PORT, got 'localhost'"),
            (
                "tcp:localhost:99999",
                "tcp: port '99999' is not a number between 1 and 65535",
            ),
            (
                "tcp:localhost:0",
                "tcp: port '0' is not a number between 1 and 65535",
            ),
            ("tcp::4000", "tcp: missing host in ':4000'"),
            (
                "tcp:::1:4000",
                "tcp: an IPv6 address must be in brackets, e.g. tcp:[::1]:4000",
            ),
            (
                "tcp:[::1:4000",
                "tcp: '[::1:4000' has '[' without a closing ']'",
            ),
            (
                "tcp:[::1]4000",
                "tcp: expected [HOST]:PORT, got '[::1]4000'",
            ),
        ];
        for (text, want) in cases {
            assert_eq!(parse(text), Err(want.to_string()), "{text}");
        }
    }

    #[test]
    fn sim_profiles() {
        assert_eq!(parse("sim"), Ok(TransportSpec::Sim(SimProfile::Pn7150)));
        assert_eq!(
            parse("sim:pn7150"),
            Ok(TransportSpec::Sim(SimProfile::Pn7150))
        );
        assert_eq!(parse("sim:nci2"), Ok(TransportSpec::Sim(SimProfile::Nci2)));
        assert_eq!(
            parse("sim:pn7160"),
            Err("sim: unknown profile 'pn7160' (expected pn7150 or nci2)".into())
        );
    }

    #[test]
    fn sim_behind_i2c() {
        let pn7150 = |speed| {
            Ok(TransportSpec::SimI2c(SimI2cSpec {
                profile: SimProfile::Pn7150,
                speed,
            }))
        };
        assert_eq!(parse("sim:pn7150@i2c"), pn7150(BusSpeed::Fast));
        assert_eq!(parse("sim:pn7150@i2c:100k"), pn7150(BusSpeed::Standard));
        assert_eq!(parse("sim:pn7150@i2c:3.4m"), pn7150(BusSpeed::HighSpeed));
        assert_eq!(
            parse("sim:nci2@i2c"),
            Ok(TransportSpec::SimI2c(SimI2cSpec {
                profile: SimProfile::Nci2,
                speed: BusSpeed::Fast,
            }))
        );
        assert_eq!(
            parse("sim:pn7150@spi"),
            Err(
                "sim: unknown bus 'spi' (expected i2c, e.g. sim:pn7150@i2c or sim:pn7150@i2c:400k)"
                    .into()
            )
        );
        assert_eq!(
            parse("sim:pn7150@i2c:1m"),
            Err("unknown I²C speed '1m' (expected 100k, 400k or 3.4m)".into())
        );
        assert_eq!(
            parse("sim:pn7160@i2c"),
            Err("sim: unknown profile 'pn7160' (expected pn7150 or nci2)".into())
        );
    }

    #[test]
    fn unknown_and_empty() {
        assert_eq!(
            parse("spi:/dev/spidev0.0"),
            Err("unknown transport 'spi' (expected i2c, uart, tcp or sim)".into())
        );
        assert_eq!(
            parse("  "),
            Err("empty transport (expected i2c:..., uart:..., tcp:... or sim)".into())
        );
    }

    #[test]
    fn display_round_trips() {
        for text in [
            "i2c:/dev/i2c-1@0x28,irq=gpiochip0:23,ven=gpiochip0:24",
            "i2c:/dev/i2c-1@0x2a,irq=/dev/gpiochip4:GPIO23",
            "uart:/dev/ttyUSB0@115200",
            "tcp:127.0.0.1:4000",
            "tcp:[::1]:4000",
            "sim:pn7150",
            "sim:nci2",
            "sim:pn7150@i2c:400k",
            "sim:nci2@i2c:3.4m",
        ] {
            let spec = parse(text);
            assert_eq!(spec.as_ref().map(ToString::to_string), Ok(text.to_string()));
        }
        // Short forms print in full.
        assert_eq!(
            parse("uart:/dev/ttyS0").map(|s| s.to_string()),
            Ok("uart:/dev/ttyS0@115200".into())
        );
        assert_eq!(parse("sim").map(|s| s.to_string()), Ok("sim:pn7150".into()));
        assert_eq!(
            parse("sim:pn7150@i2c").map(|s| s.to_string()),
            Ok("sim:pn7150@i2c:400k".into())
        );
    }
}
