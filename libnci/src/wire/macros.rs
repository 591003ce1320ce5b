//! `open_enum!`: an enum over a code space that keeps unknown values.
//!
//! NCI reserves most code points for future use or for proprietary extensions; a controller may
//! send any of them. Each open enum converts from and to its raw integer without loss, so an
//! unknown code point is carried as `Unknown(raw)` and emitted unchanged.

macro_rules! open_enum {
    (
        $(#[$meta:meta])*
        pub enum $name:ident($ty:ty) {
            $(
                $(#[$vmeta:meta])*
                $variant:ident = $value:expr => $label:expr
            ),+ $(,)?
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub enum $name {
            $( $(#[$vmeta])* $variant, )+
            /// A code point this crate does not name, kept as received.
            Unknown($ty),
        }

        impl From<$ty> for $name {
            fn from(value: $ty) -> Self {
                match value {
                    $( $value => $name::$variant, )+
                    other => $name::Unknown(other),
                }
            }
        }

        impl From<$name> for $ty {
            fn from(value: $name) -> Self {
                match value {
                    $( $name::$variant => $value, )+
                    $name::Unknown(other) => other,
                }
            }
        }

        impl $name {
            /// The specification's name for this code point, `None` for an unknown one.
            pub fn spec_name(self) -> Option<&'static str> {
                match self {
                    $( $name::$variant => Some($label), )+
                    $name::Unknown(_) => None,
                }
            }
        }

        impl core::fmt::Display for $name {
            fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
                match self.spec_name() {
                    Some(name) => f.write_str(name),
                    None => write!(f, "0x{:02X}", <$ty>::from(*self)),
                }
            }
        }
    };
}
