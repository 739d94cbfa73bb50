//! The two macros that write the facade: `blocking_type!` declares a wrapper around an
//! async proxy, `blocking_fns!` forwards a list of its methods through `block_on`.

/// Declares `blocking::$name`, wrapping `crate::proxy::$name` and the runtime it runs on,
/// with `id`, `handle`, `Clone`, `Debug` and the [`FromAsync`](super::runtime::FromAsync)
/// conversion. Fields drop in order: the async proxy (whose handle may send a release)
/// before the runtime.
macro_rules! blocking_type {
    ($(#[$doc:meta])* $name:ident < $($t:ident),* >) => {
        $(#[$doc])*
        pub struct $name<$($t),*> {
            inner: crate::proxy::$name<$($t),*>,
            rt: std::sync::Arc<crate::blocking::runtime::Rt>,
        }

        impl<$($t),*> $name<$($t),*> {
            /// The object's id on the node (another process takes its own reference to an
            /// anonymous object with `adopt(id)`).
            pub fn id(&self) -> u64 {
                self.inner.id()
            }

            /// The underlying handle.
            pub fn handle(&self) -> &std::sync::Arc<crate::proxy::ObjectHandle> {
                self.inner.handle()
            }
        }

        impl<$($t),*> Clone for $name<$($t),*> {
            fn clone(&self) -> Self {
                $name {
                    inner: self.inner.clone(),
                    rt: self.rt.clone(),
                }
            }
        }

        impl<$($t),*> std::fmt::Debug for $name<$($t),*> {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                std::fmt::Debug::fmt(&self.inner, f)
            }
        }

        impl<$($t),*> crate::blocking::runtime::FromAsync<crate::proxy::$name<$($t),*>>
            for $name<$($t),*>
        {
            fn from_async(
                inner: crate::proxy::$name<$($t),*>,
                rt: &std::sync::Arc<crate::blocking::runtime::Rt>,
            ) -> Self {
                $name { inner, rt: rt.clone() }
            }
        }
    };
}
pub(crate) use blocking_type;

/// Writes, inside an `impl` of a type with fields `inner` (the async value) and `rt`, one
/// blocking method per signature:
///
/// ```text
/// blocking_fns! {
///     crate::proxy::DictProxy;                              // the async type, for doc links
///     /// `d[key] = value`.
///     fn insert(&self, key: &K, value: &V) -> Result<()>;   // forwarded as is
///     fn dict<K, V>(&self, name: &str) -> Result<DictProxy<K, V>> => wrap;  // result wrapped
/// }
/// ```
///
/// Each becomes `pub fn name(&self, args) -> R { self.rt.block_on(self.inner.name(args)) }`
/// (with `=> f`, the `Ok` value is passed through `f(value, &self.rt)`), keeping its `///`
/// lines and adding a link to the async method.
macro_rules! blocking_fns {
    (
        $async_ty:path;
        $(
            $(#[$doc:meta])*
            fn $name:ident $(<$($g:ident $(: $bound:path)?),+>)?
                (&self $(, $arg:ident : $ty:ty)* $(,)?) -> $ret:ty $(=> $wrap:path)?;
        )*
    ) => {
        $(
            $(#[$doc])*
            #[doc = ""]
            #[doc = concat!("Blocks on [`", stringify!($async_ty), "::", stringify!($name), "`].")]
            pub fn $name $(<$($g $(: $bound)?),+>)? (&self $(, $arg: $ty)*) -> $ret {
                let result = self.rt.block_on(self.inner.$name($($arg),*));
                $(let result = result.map(|inner| $wrap(inner, &self.rt));)?
                result
            }
        )*
    };
}
pub(crate) use blocking_fns;
