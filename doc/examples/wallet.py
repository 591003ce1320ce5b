#!/usr/bin/python3
"""A minimal nfcd wallet: registers one AID and answers its APDUs (see doc/python-wallet.md).

Usage: wallet.py [system | session | <D-Bus address>]     (default: system)
Needs python3-dbus and python3-gi (PyGObject).
"""
import signal
import sys

import dbus
import dbus.service
from dbus.mainloop.glib import DBusGMainLoop
from gi.repository import GLib

AID = bytes.fromhex("F00102030405")  # category F: proprietary, unregistered (ISO/IEC 7816-5)
PATH = "/com/example/PyWallet"
IFACE = "org.nfcd.HostService1"


class HostService(dbus.service.Object):
    @dbus.service.method(IFACE, in_signature="ay", out_signature="ay",
                         byte_arrays=True, sender_keyword="sender")
    def ProcessApdu(self, command, sender=None):
        if sender != daemon:  # APDUs are for the daemon only, not for any peer on the bus
            raise dbus.exceptions.DBusException("not nfcd", name="org.freedesktop.DBus.Error.AccessDenied")
        print("C-APDU", bytes(command).hex().upper(), flush=True)
        if command[:4] == b"\x00\xa4\x04\x00":  # SELECT by name: answer with our FCI
            return dbus.ByteArray(b"\x6f\x08\x84\x06" + AID + b"\x90\x00")
        return dbus.ByteArray(b"hello\x90\x00")  # data field, then SW1 SW2 = 9000

    @dbus.service.method(IFACE, in_signature="s", out_signature="")
    def Deactivated(self, reason):
        print("deactivated:", reason, flush=True)


DBusGMainLoop(set_as_default=True)
where = sys.argv[1] if len(sys.argv) > 1 else "system"
bus = {"system": dbus.SystemBus, "session": dbus.SessionBus}.get(
    where, lambda: dbus.bus.BusConnection(where))()
service = HostService(bus, PATH)
manager = dbus.Interface(bus.get_object("org.nfcd", "/org/nfcd"), "org.nfcd.Manager1")
manager.RegisterService(dbus.ObjectPath(PATH), dbus.Dictionary({
    "Id": "com.example.pywallet",
    "Category": "other",
    "Aids": dbus.Array([dbus.ByteArray(AID)], signature="ay"),
}, signature="sv"))
daemon = bus.get_name_owner("org.nfcd")
print("registered", AID.hex().upper(), flush=True)

loop = GLib.MainLoop()
for signum in (signal.SIGINT, signal.SIGTERM):
    GLib.unix_signal_add(GLib.PRIORITY_DEFAULT, signum, loop.quit)
loop.run()
manager.UnregisterService(dbus.ObjectPath(PATH))
