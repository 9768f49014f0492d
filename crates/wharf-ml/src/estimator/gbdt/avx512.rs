//! Functions compiled twice: for the baseline x86-64, and with AVX-512, chosen at run time
//! when the CPU has it. The loops they hold are written so the compiler vectorizes them;
//! AVX-512 makes the vectors eight `f64` (sixteen `f32`) wide. Each lane does the same IEEE
//! operations whatever the width (Rust never fuses a multiply and an add on its own), so both
//! versions give the same bits: a model does not depend on the machine that trained it.

/// `avx512! { /// docs
/// fn name(args) -> R = generic; }` defines `name`, which runs `generic` (an
/// `#[inline(always)]` function taking the same arguments) compiled with AVX-512F and DQ when
/// the CPU has both, and as compiled for the baseline otherwise.
macro_rules! avx512 {
    ($(#[$attr:meta])* $vis:vis fn $name:ident($($arg:ident: $ty:ty),* $(,)?) $(-> $ret:ty)? = $generic:ident;) => {
        $(#[$attr])*
        $vis fn $name($($arg: $ty),*) $(-> $ret)? {
            #[cfg(target_arch = "x86_64")]
            {
                #[target_feature(enable = "avx512f,avx512dq")]
                fn wide($($arg: $ty),*) $(-> $ret)? {
                    $generic($($arg),*)
                }
                if std::arch::is_x86_feature_detected!("avx512f") && std::arch::is_x86_feature_detected!("avx512dq") {
                    // SAFETY: the CPU has AVX-512F and DQ (checked just above), the only
                    // requirement of a function compiled with them.
                    return unsafe { wide($($arg),*) };
                }
            }
            $generic($($arg),*)
        }
    };
}

pub(crate) use avx512;
