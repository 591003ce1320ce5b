#!/usr/bin/env bash
# Writes the seed corpora of the fuzz targets: one directory per target, one file per seed.
# The bytes are the golden vectors of the code and its tests (real PN7150 traffic, the virtual
# NCI 2.0 controller's start-up, EMV and transit APDUs, kernel uevents) laid out the way each
# target reads its input (see the header comment of each fuzz_targets/*.rs).
#
# Usage: fuzz/corpus-seed/generate.sh   (rewrites fuzz/corpus-seed/*/; the result is committed)
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
cd "$here"

# seed TARGET NAME HEX...: write the bytes given in hex (spaces ignored).
seed() {
    local target=$1 name=$2 hex="${*:3}" escaped="" i
    hex=${hex//[[:space:]]/}
    for ((i = 0; i < ${#hex}; i += 2)); do
        escaped+="\\x${hex:i:2}"
    done
    mkdir -p "$target"
    printf '%b' "$escaped" >"$target/$name"
}

# text TARGET NAME TEXT: write TEXT as given (printf escapes such as \0 expanded).
text() {
    mkdir -p "$1"
    printf '%b' "$3" >"$1/$2"
}

rm -rf -- */

# --- nci_packet: selector (0 = NCI 1.0, 1 = NCI 2.0), then one packet -------------------------
seed nci_packet core-reset-rsp-pn7150        00 40 00 03 00 10 01
seed nci_packet core-init-rsp-pn7150         00 40 01 19 00 03 1E 03 00 08 00 01 02 03 80 81 82 83 02 D0 02 FF 02 00 04 88 10 01 A0
seed nci_packet nci-proprietary-act-rsp      00 4F 02 05 00 00 01 10 A0
seed nci_packet core-get-config-rsp          00 40 03 0B 00 04 32 00 38 00 58 00 80 01 00
seed nci_packet core-set-config-cmd          00 20 02 0D 04 32 01 20 38 01 01 58 01 07 80 01 01
seed nci_packet rf-discover-map-cmd          00 21 00 04 01 04 02 02
seed nci_packet rf-set-routing-cmd           00 21 01 11 00 03 01 03 00 01 04 00 03 00 01 00 00 03 00 01 01
seed nci_packet rf-discover-cmd              00 21 03 05 02 80 01 81 01
seed nci_packet rf-intf-activated-ntf-a      00 61 05 0C 01 02 04 80 FF 01 00 80 00 00 01 80
seed nci_packet rf-deactivate-ntf            00 61 06 02 03 00
seed nci_packet core-conn-credits-ntf        00 60 06 03 01 00 01
seed nci_packet data-sw-9000                 00 00 00 02 90 00
seed nci_packet core-reset-ntf-nci2          01 60 00 09 02 01 20 00 04 00 00 00 00
seed nci_packet core-init-cmd-nci2           01 20 01 02 00 00
seed nci_packet core-init-rsp-nci2           01 40 01 16 00 03 1E 03 00 02 00 04 FF FF 01 00 01 04 00 00 01 00 02 00 03 00
seed nci_packet rf-intf-activated-ntf-b      01 61 05 14 01 02 04 81 FF 01 00 81 00 00 09 08 08 4E 43 49 00 08 01 00

# --- nci_message: flags (MT, NCI 2.0, data identity, CR), GID / conn id, OID, payload ------------
seed nci_message core-init-rsp-pn7150        02 00 01 00 03 1E 03 00 08 00 01 02 03 80 81 82 83 02 D0 02 FF 02 00 04 88 10 01 A0
seed nci_message core-init-rsp-nci2          0A 00 01 00 03 1E 03 00 02 00 04 FF FF 01 00 01 04 00 00 01 00 02 00 03 00
seed nci_message rf-intf-activated-ntf       03 01 05 01 02 04 80 FF 01 00 80 00 00 01 80
seed nci_message rf-set-routing-cmd          01 01 01 00 03 01 03 00 01 04 00 03 00 01 00 00 03 00 01 01
seed nci_message data-select-ppse            10 00 00 00 A4 04 00 0E 32 50 41 59 2E 53 59 53 2E 44 44 46 30 31 00
seed nci_message proprietary-pres-check      03 0F 11 01

# --- reassembler: chunks of flags (1 copy, 2 explicit length, 4 reset) and a packet -------------
seed reassembler data-two-segments           00 10 00 03 01 02 03   00 00 00 02 90 00
seed reassembler control-two-segments        00 50 01 02 AA BB      00 40 01 01 CC
seed reassembler interleaved-control         00 50 01 01 AA         00 40 02 01 BB   00 40 01 01 CC
seed reassembler ntf-between-data            01 10 00 01 AA         00 61 07 01 01   01 00 00 01 BB
seed reassembler malformed-then-reset        02 02 20 00            04 20 00 01 01

# --- routing_entries: selector 0 = received entries, 1 = table builder --------------------------
seed routing_entries pn7150-table            00 00 03 01 03 00 01 04 00 03 00 01 00 00 03 00 01 01
seed routing_entries nci2-entries            00 12 07 10 07 A0 00 00 00 04 43 04 10 01 12 FC 04 06 00 01 80 CA FF FF
seed routing_entries nci1-proprietary        00 A0 02 11 22 01 03 00 01 04
# Builder: NCI 1.0, 720-octet table, 255-octet payload, 2 refusals; ISO-DEP and NFC-A to the
# host, an off-host prefix AID and an exact one.
seed routing_entries builder-pn7150          01 00 02D0 FF 02   01 00 01 04   00 00 01 00   05 81 01 05 A0 00 00 00 04   02 81 07 07 A0 00 00 00 03 10 10
seed routing_entries builder-nci2-tiny       01 01 0010 08 03   02 81 3F 05 F0 00 00 00 01   05 81 3F 06 F0 00 00 00 01 02

# --- controller: configuration byte, then op-codes (see fuzz_targets/controller.rs) -------------
# PN7150: start-up, field on, NFC-A activation, PPSE and Visa SELECT, a short and a 262-octet
# answer (two data packets and a credit round trip), deactivation.
seed controller pn7150-tap                   01 02 0B 01 02 0C 00 02 0D 00 02 0F 00 02 0D 01 02 10 01 04 02 0E 00 02
# NCI 2.0: start-up, NFC-B activation, PPSE, DESELECT to sleep, link loss.
seed controller nci2-tap-sleep               03 02 0B 01 02 0C 01 02 0D 00 02 0F 00 02 0E 01 02 0E 00 02
# PN7150 with a clock setting that needs a second start-up pass; a lost response, the timeout,
# recovery; routes and listen changes during a tap.
seed controller pn7150-faults                05 00 01 00 04 0A 0A 02 0B 01 02 0C 00 11 01 02 81 3F 05 F0 00 00 00 01 12 01 02 0D 00 02 0F 00 02 13 00 02

# --- apdu: a C-APDU (and, for the trailer helpers, an R-APDU) ----------------------------------
seed apdu select-ppse                        00 A4 04 00 0E 32 50 41 59 2E 53 59 53 2E 44 44 46 30 31 00
seed apdu select-visa                        00 A4 04 00 07 A0 00 00 00 03 10 10 00
seed apdu select-next                        00 A4 04 02 05 A0 00 00 00 04
seed apdu gpo                                80 A8 00 00 02 83 00 00
seed apdu read-record                        00 B2 01 0C 00
seed apdu case4e                             00 A4 04 00 00 00 07 A0 00 00 00 03 10 10 00 00
seed apdu case2e                             00 CA 00 00 00 00 00
seed apdu r-apdu-fci                         6F 0A 84 08 A0 00 00 00 03 10 10 90 00

# --- config: the shipped configuration file and small variants -------------------------------
mkdir -p config
cp ../../config/nfcd.toml config/nfcd.toml
text config sim-nci2 '[daemon]\ntransport = "sim:nci2"\nbus = "session"\n\n[listen]\ntechnologies = ["a"]\nli_a_rats_tb1 = 0x70\nhistorical_bytes = "80 73 C0 21"\n'
text config uart-pll '[daemon]\ntransport = "uart:/dev/ttyUSB0@115200"\nstate_dir = "/var/lib/nfcd"\n\n[nxp]\nclock = "pll"\npll_freq_mhz = 19.2\nclock_timeout = 1\ntvdd = "5V"\n\n[access]\npayment = ["group:nfc-wallet", "uid:1000"]\n'

# --- dbus_options: entries of key choice and value (tag + operands) --------------------------
# Id "com.example.wallet", Category "payment", Aids [A0000000031010], Name "Visa".
seed dbus_options payment                    00 01 00   01 01 02   02 08 20 01 07 A0 00 00 00 03 10 10   05 00 04 56 69 73 61
# Transit, express, a prefix AID.
seed dbus_options transit-express            00 01 01   01 01 03   03 08 20 01 05 F0 00 00 00 01   07 02 01
# Aids as `as`, then a huge generated list.
seed dbus_options wrong-types                00 01 00   01 01 04   02 0B 01 0E 41 30 30 30 30 30 30 30 30 33 31 30 31 30
seed dbus_options huge-list                  00 01 00   01 01 04   04 08 00 0F FF 0A

# --- hce_session: policy, registrations, then operations ------------------------------------
# A payment service (A0000000031000 exact, A000000004 prefix) and an other service sharing the
# exact AID; then SELECT, GPO, lock, SELECT again, app failure, owner gone.
seed hce_session payment-and-other           00 02   00 00 02 00 0C 01 00 01 07   08 02 01 02 0C 01 00   00 01 0C 01 00 00 00 01   00 03 00   05   00 01 0C 01 00 00 00 01   06   07 00
# Two transit services (one express) with overlapping subset AIDs; a truncated SELECT, next
# occurrence twice, then the same while locked.
seed hce_session transit-next                04 02   28 01 02 02 12 02 03 01 02 01 07   04 03 01 02 12 02 03 01 03   00 01 0C 02 03 00 00 01   00 01 0C 02 03 80 00 01   00 01 0C 02 03 80 00 01   05 00 01 0C 02 03 00 00 01

# --- uevent: kernel datagrams ----------------------------------------------------------------
text uevent i2c-dev-add 'add@/devices/platform/soc/fe804000.i2c/i2c-1/i2c-dev/i2c-1\0ACTION=add\0DEVPATH=/devices/platform/soc/fe804000.i2c/i2c-1/i2c-dev/i2c-1\0SUBSYSTEM=i2c-dev\0MAJOR=89\0MINOR=1\0DEVNAME=i2c-1\0SEQNUM=2154\0'
text uevent tty-remove 'remove@/devices/platform/scb/fd500000.pcie/usb1/1-1/1-1.3/1-1.3:1.0/ttyUSB0/tty/ttyUSB0\0ACTION=remove\0SUBSYSTEM=tty\0MAJOR=188\0MINOR=0\0DEVNAME=ttyUSB0\0SEQNUM=3310\0'
text uevent gpio-bind 'bind@/devices/platform/soc/fe200000.gpio\0ACTION=bind\0DRIVER=pinctrl-bcm2835\0SUBSYSTEM=platform\0SEQNUM=12\0'
text uevent libudev 'libudev\0\xfe\xed\xca\xfe'

echo "seeds written to $here"
