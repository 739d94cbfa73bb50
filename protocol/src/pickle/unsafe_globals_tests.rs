//! Unit tests of [`check_globals`]: what it refuses (real CPython pickles of attacks and
//! hand-written opcode sequences, at any depth and position) and what it lets through (real
//! CPython 3.11 pickles of ordinary values, and the shapes the server writes). The corpus of
//! every interpreter and protocol is in `protocol/tests/pickle_cpython.rs`.

use super::*;

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

fn load(data: &[u8]) -> Pickle {
    match loads(data, &Limits::default()) {
        Ok(v) => v,
        Err(e) => panic!("{data:?}: {e}"),
    }
}

/// The global a refused tree names.
fn refused_tree(value: &Pickle) -> String {
    match check_globals(value) {
        Err(e) => e.global,
        Ok(()) => panic!("accepted {value:?}"),
    }
}

fn refused(data: &[u8]) -> String {
    refused_tree(&load(data))
}

fn accepted_tree(value: &Pickle) {
    if let Err(e) = check_globals(value) {
        panic!("{e}: {value:?}");
    }
}

fn accepted(data: &[u8]) {
    accepted_tree(&load(data));
}

fn s(v: &str) -> Pickle {
    Pickle::Str(v.to_owned())
}

fn tuple(v: Vec<Pickle>) -> Pickle {
    Pickle::Tuple(v)
}

fn call(callable: Pickle, args: Vec<Pickle>) -> Pickle {
    Pickle::Reduce {
        callable: Box::new(callable),
        args: Box::new(tuple(args)),
    }
}

fn getattr(target: Pickle, name: &str) -> Pickle {
    call(global("builtins", "getattr"), vec![target, s(name)])
}

fn new_obj(class: Pickle) -> Pickle {
    Pickle::NewObj {
        class: Box::new(class),
        args: Box::new(tuple(vec![])),
        kwargs: None,
    }
}

fn system(cmd: &str) -> Pickle {
    call(global("os", "system"), vec![s(cmd)])
}

/// `module.name` as `STACK_GLOBAL` (protocol 4), then `REDUCE` with one str argument.
fn stack_global_call(module: &str, name: &str, arg: &str) -> Vec<u8> {
    let mut data = b"\x80\x04".to_vec();
    for text in [module, name] {
        data.push(0x8c);
        data.push(text.len() as u8);
        data.extend_from_slice(text.as_bytes());
    }
    data.push(0x93);
    data.push(0x8c);
    data.push(arg.len() as u8);
    data.extend_from_slice(arg.as_bytes());
    data.extend_from_slice(b"\x85R.");
    data
}

// ---- refused ----

#[test]
fn the_classic_os_system_is_refused_with_a_message_naming_it() {
    let e = check_globals(&load(b"cos\nsystem\n(S'echo hi'\ntR.")).unwrap_err();
    assert_eq!(e.global, "os.system");
    let message = e.to_string();
    assert!(
        message.starts_with(
            "the pickle names os.system, which could run code on whoever reads it back"
        ),
        "{message}"
    );
    // What CPython 3.11 writes for `os.system('echo hi')` as a reducer: `posix.system`.
    for hex in [
        "63706f7369780a73797374656d0a70300a28566563686f2068690a70310a7470320a5270330a2e",
        "800263706f7369780a73797374656d0a710058070000006563686f20686971018571025271032e",
        "80049522000000000000008c05706f736978948c0673797374656d9493948c076563686f20686994859452942e",
    ] {
        assert_eq!(refused(&unhex(hex)), "posix.system");
    }
}

#[test]
fn importlibs_frozen_loaders_are_refused() {
    // Found in review: `_LoaderBasics.exec_module` of a namespace whose `get_code` is a
    // partial of `SourceLoader.source_to_code` compiles and runs source text on the reader,
    // while `importlib` itself was refused. CPython 3.11, protocols 4 and 2.
    for hex in [
        "800495e5000000000000008c1a5f66726f7a656e5f696d706f72746c69625f65787465726e616c948c195f4c6f616465724261736963732e657865635f6d6f64756c659493948c057479706573948c0f53696d706c654e616d6573706163659493942952947d948c086765745f636f6465948c0966756e63746f6f6c73948c077061727469616c94939468008c1b536f757263654c6f616465722e736f757263655f746f5f636f64659493948594529428680d4e43126f70656e28272f746d702f78272c277727299486947d944e749462736268052952947d948c085f5f6e616d655f5f948c016d947362869452942e",
        "8002635f5f6275696c74696e5f5f0a676574617474720a7100635f66726f7a656e5f696d706f72746c69625f65787465726e616c0a5f4c6f616465724261736963730a7101580b000000657865635f6d6f64756c6571028671035271046374797065730a53696d706c654e616d6573706163650a7105295271067d710758080000006765745f636f646571086366756e63746f6f6c730a7061727469616c0a71096800635f66726f7a656e5f696d706f72746c69625f65787465726e616c0a536f757263654c6f616465720a710a580e000000736f757263655f746f5f636f6465710b86710c52710d85710e52710f28680d4e635f636f646563730a656e636f64650a711058120000006f70656e28272f746d702f78272c27772729711158060000006c6174696e3171128671135271148671157d71164e7471176273626805295271187d711958080000005f5f6e616d655f5f711a58010000006d711b736286711c52711d2e",
    ] {
        assert!(
            refused(&unhex(hex)).starts_with("_frozen_importlib_external."),
            "{hex}"
        );
    }
    for global in ["_frozen_importlib.BuiltinImporter", "_imp.create_builtin"] {
        let (module, name) = global.split_once('.').unwrap();
        assert_eq!(refused_tree(&crate::pickle::global(module, name)), global);
    }
    // A user module's loader-like method names are refused wherever they live.
    assert_eq!(
        refused_tree(&crate::pickle::global("mymod", "Loader.exec_module")),
        "mymod.Loader.exec_module"
    );
}

#[test]
fn whole_modules_are_refused() {
    // Not in DENIED_NAMES: refused by the module entry alone.
    for (module, name) in [
        ("os", "fork"),
        ("posix", "kill"),
        ("nt", "remove"),
        ("subprocess", "run"),
        ("sys", "settrace"),
        ("shutil", "move"),
        ("importlib", "reload"),
        ("runpy", "run_path"),
        ("code", "interact"),
        ("code", "InteractiveConsole"),
        ("profile", "Profile"),
        ("test.support.script_helper", "assert_python_ok"),
        ("codeop", "compile_command"),
        ("pty", "fork"),
        ("socket", "create_connection"),
        ("ctypes", "CDLL"),
        ("marshal", "dumps"),
        ("pickle", "Unpickler"),
        ("_pickle", "Unpickler"),
        ("pickletools", "dis"),
        ("shelve", "Shelf"),
        ("webbrowser", "get"),
        ("platform", "uname"),
        ("signal", "raise_signal"),
        ("multiprocessing.util", "_run_finalizers"),
        ("multiprocessing.connection", "Client"),
        ("multiprocessing.managers", "BaseManager"),
        ("multiprocessing.managers", "dispatch"),
        ("types", "new_class"),
        ("copyreg", "add_extension"),
        ("pathlib", "Path.unlink"),
        ("pydoc", "pipepager"),
        ("typing", "get_type_hints"),
        ("operator", "attrgetter"),
        ("_operator", "methodcaller"),
        ("threading", "Timer"),
        ("atexit", "register"),
        ("tempfile", "mkdtemp"),
        ("logging.config", "fileConfig"),
        ("urllib.request", "urlretrieve"),
        // Shell commands on any platform (found by a review; a reader ran them).
        ("_osx_support", "_read_output"),
        ("_osx_support", "_find_build_tool"),
        ("_aix_support", "aix_platform"),
        ("_bootsubprocess", "check_output"),
        ("antigravity", "geohash"),
    ] {
        assert_eq!(
            refused(&stack_global_call(module, name, "x")),
            format!("{module}.{name}")
        );
    }
    // Protocol 0 GLOBAL and a bare global as a value.
    assert_eq!(refused(b"csubprocess\nrun\n."), "subprocess.run");
    assert_eq!(refused(b"(lp0\ncbuiltins\nexec\np1\na."), "builtins.exec");
}

#[test]
fn dangerous_builtins_are_refused() {
    for name in [
        "eval",
        "exec",
        "compile",
        "__import__",
        "open",
        "getattr",
        "setattr",
        "delattr",
        "globals",
        "locals",
        "vars",
        "input",
        "breakpoint",
        "help",
        "exit",
        "quit",
        "license",
    ] {
        assert_eq!(
            refused(&stack_global_call("builtins", name, "x")),
            format!("builtins.{name}")
        );
    }
    // The builtins ordinary values use pass.
    for name in [
        "set",
        "frozenset",
        "bytearray",
        "complex",
        "slice",
        "range",
        "list",
        "object",
    ] {
        accepted(&stack_global_call("builtins", name, "x"));
    }
}

#[test]
fn dangerous_names_are_refused_in_any_module() {
    // Aliases (`from os import system`) and the same callable under other modules.
    for (module, name) in [
        ("some_module", "system"),
        ("usermod", "popen"),
        ("io", "open"),
        ("codecs", "open"),
        ("gzip", "open"),
        ("numpy", "load"),
        ("numpy.core", "_ufunc_reconstruct"),
        ("yaml", "unsafe_load"),
        ("json", "loads"),
        ("usermod", "Helper.check_output"),
        ("usermod", "eval"),
    ] {
        assert_eq!(
            refused(&stack_global_call(module, name, "x")),
            format!("{module}.{name}")
        );
    }
}

#[test]
fn protocol_0_to_2_names_are_checked_as_translated() {
    // loads translates these as CPython does; the tree holds the Python 3 names.
    let cases: [(&[u8], &str); 6] = [
        (b"c__builtin__\neval\n(S'1'\ntR.", "builtins.eval"),
        (
            b"\x80\x02c__builtin__\nexec\nX\x01\x00\x00\x00x\x85R.",
            "builtins.exec",
        ),
        (b"\x80\x02c__builtin__\ngetattr\n.", "builtins.getattr"),
        (
            b"\x80\x02ccommands\ngetoutput\nX\x02\x00\x00\x00id\x85R.",
            "subprocess.getoutput",
        ),
        (b"\x80\x02ccPickle\nloads\nC\x01N\x85R.", "pickle.loads"),
        (b"c__builtin__\nintern\n.", "sys.intern"),
    ];
    for (data, name) in cases {
        assert_eq!(refused(data), name);
    }
    // Protocol 3+ keeps `__builtin__` literally; it is refused all the same.
    assert_eq!(refused(b"\x80\x03c__builtin__\nlen\n."), "__builtin__.len");
    // A translated name that is ordinary data passes.
    accepted(b"\x80\x02c__builtin__\nset\n]\x85R.");
}

#[test]
fn nested_anywhere_in_the_tree() {
    // CPython 3.11 pickles of eval inside a dict inside a list, shutil.rmtree inside a
    // dataclass's state, and functools.partial(os.system, 'id').
    let cases = [
        ("8002 5d7100284b017d710158010000006b7102635f5f6275696c74696e5f5f0a6576616c0a71035803000000312b31710485710552710673652e", "builtins.eval"),
        ("8004952c000000000000005d94284b017d948c016b948c086275696c74696e73948c046576616c9493948c03312b31948594529473652e", "builtins.eval"),
        ("63636f70795f7265670a5f7265636f6e7374727563746f720a70300a2863757365726d6f64320a44430a70310a635f5f6275696c74696e5f5f0a6f626a6563740a70320a4e7470330a5270340a286470350a56610a70360a49310a7356620a70370a286c70380a6373687574696c0a726d747265650a70390a28562f746d702f780a7031300a747031310a527031320a6173622e", "shutil.rmtree"),
        ("80049549000000000000008c08757365726d6f6432948c0244439493942981947d94288c0161944b018c0162945d948c0673687574696c948c06726d747265659493948c062f746d702f7894859452946175622e", "shutil.rmtree"),
        ("80026366756e63746f6f6c730a7061727469616c0a710063706f7369780a73797374656d0a71018571025271032868015802000000696471048571057d71064e747107622e", "posix.system"),
        ("80049540000000000000008c0966756e63746f6f6c73948c077061727469616c9493948c05706f736978948c0673797374656d949394859452942868058c0269649485947d944e7494622e", "posix.system"),
    ];
    for (hex, name) in cases {
        assert_eq!(refused(&unhex(&hex.replace(' ', ""))), name);
    }
    // Every position of every node kind.
    let bad = || system("id");
    let user = || new_obj(global("usermod", "Point"));
    let positions = vec![
        Pickle::List(vec![Pickle::Int(1), bad()]),
        tuple(vec![tuple(vec![bad()])]),
        Pickle::Set(vec![bad()]),
        Pickle::FrozenSet(vec![bad()]),
        Pickle::Dict(vec![(bad(), Pickle::None)]),
        Pickle::Dict(vec![(s("k"), bad())]),
        call(global("functools", "partial"), vec![bad()]),
        Pickle::NewObj {
            class: Box::new(global("usermod", "Point")),
            args: Box::new(tuple(vec![bad()])),
            kwargs: None,
        },
        Pickle::NewObj {
            class: Box::new(global("usermod", "Point")),
            args: Box::new(tuple(vec![])),
            kwargs: Some(Box::new(Pickle::Dict(vec![(s("x"), bad())]))),
        },
        Pickle::Obj {
            class: Box::new(global("usermod", "Point")),
            args: vec![bad()],
        },
        Pickle::Build {
            object: Box::new(user()),
            state: Box::new(Pickle::Dict(vec![(s("x"), bad())])),
        },
        Pickle::Build {
            object: Box::new(call(global("usermod", "make"), vec![bad()])),
            state: Box::new(Pickle::None),
        },
        Pickle::Appends {
            target: Box::new(user()),
            items: vec![bad()],
        },
        Pickle::SetItems {
            target: Box::new(user()),
            items: vec![(s("k"), bad())],
        },
        Pickle::SetItems {
            target: Box::new(user()),
            items: vec![(bad(), s("v"))],
        },
        Pickle::AddItems {
            target: Box::new(user()),
            items: vec![bad()],
        },
    ];
    for value in positions {
        assert_eq!(refused_tree(&value), "os.system", "{value:?}");
        // And under a value that dumps and loads again.
        assert_eq!(refused(&dumps(&value)), "os.system", "{value:?}");
    }
}

#[test]
fn inst_and_obj_opcodes() {
    // INST: `(` args, then `i module\nname\n`; OBJ: `(` class args `o`.
    assert_eq!(refused(b"(S'echo hi'\nios\nsystem\n."), "os.system");
    assert_eq!(refused(b"(cos\nsystem\nS'echo hi'\no."), "os.system");
    assert_eq!(refused(b"(S'x'\nisubprocess\nPopen\n."), "subprocess.Popen");
    assert_eq!(
        refused(b"\x80\x02(cbuiltins\ngetattr\ncusermod\nC\nX\x01\x00\x00\x00mo."),
        "builtins.getattr"
    );
    // A user class through INST and OBJ passes.
    accepted(b"(K\x01iusermod\nPoint\n.");
    accepted(b"(cusermod\nPoint\nK\x01o.");
}

#[test]
fn dotted_names_are_checked_as_the_path_a_reader_resolves() {
    // A protocol 4 reader resolves `pathlib` then `.os` then `.system`.
    assert_eq!(
        refused(&stack_global_call("pathlib", "os.system", "id")),
        "pathlib.os.system"
    );
    // Through a module that has `sys` (reaching sys.modules), and os.path under os.
    assert_eq!(
        refused(b"ccollections\nsys.modules\n."),
        "collections.sys.modules"
    );
    assert_eq!(refused(b"cos.path\njoin\n."), "os.path.join");
    assert_eq!(refused(b"cos\npath.join\n."), "os.path.join");
    // A module attribute alone hands out the module object.
    assert_eq!(refused(b"cemail.utils\nos\n."), "email.utils.os");
    // Dunders reach interpreter internals.
    assert_eq!(
        refused(b"cbuiltins\nobject.__subclasses__\n."),
        "builtins.object.__subclasses__"
    );
    assert_eq!(
        refused(b"cusermod\nf.__globals__\n."),
        "usermod.f.__globals__"
    );
    assert_eq!(
        refused(b"c__main__\n__builtins__.eval\n."),
        "__main__.__builtins__.eval"
    );
    // Attributes of the proxy machinery are not the machinery.
    assert_eq!(
        refused(b"cmultiprocessing.managers\nDictProxy._callmethod\n."),
        "multiprocessing.managers.DictProxy._callmethod"
    );
    // A denied module through a dotted name of its parent package.
    assert_eq!(
        refused(b"clogging\nhandlers.SocketHandler\n."),
        "logging.handlers.SocketHandler"
    );
    // Nested classes and dotted names through ordinary modules pass.
    accepted(b"\x80\x04\x8c\x07usermod\x8c\x0bOuter.Inner\x93)\x81.");
    accepted(b"cmultiprocessing\nmanagers.Token\n.");
    accepted(b"ccopyreg\n__newobj__\n.");
}

#[test]
fn module_names_ignore_ascii_case() {
    assert_eq!(refused(b"cOS\nsystem\n."), "OS.system");
    assert_eq!(refused(b"cSubProcess\nrun\n."), "SubProcess.run");
    assert_eq!(refused(b"cpathlib\nOs.getcwd\n."), "pathlib.Os.getcwd");
    // Attribute names do not: `Load` is not `load`.
    accepted(b"cusermod\nLoad\n.");
}

#[test]
fn getattr_only_on_a_named_class_or_module() {
    // CPython's forms: a nested class (protocol < 4), a class-level method.
    let nested = getattr(global("usermod", "Outer"), "Inner");
    accepted_tree(&new_obj(nested.clone()));
    accepted_tree(&call(
        getattr(global("usermod", "WithMethod"), "cm"),
        vec![],
    ));
    accepted_tree(&getattr(getattr(global("usermod", "A"), "B"), "C"));
    // The whole chain is checked as one path.
    assert_eq!(
        refused_tree(&call(
            getattr(global("pathlib", "os"), "system"),
            vec![s("id")]
        )),
        "pathlib.os.system"
    );
    assert_eq!(
        refused_tree(&getattr(getattr(global("email", "utils"), "os"), "system")),
        "email.utils.os.system"
    );
    assert_eq!(
        refused_tree(&getattr(global("builtins", "object"), "__subclasses__")),
        "builtins.object.__subclasses__"
    );
    assert_eq!(
        refused_tree(&getattr(global("usermod", "Cls"), "a.__globals__")),
        "usermod.Cls.a.__globals__"
    );
    // On a built object: a bound method (what CPython writes for `Path('/tmp/x').write_text`).
    let bound = "8002635f5f6275696c74696e5f5f0a676574617474720a710063706174686c69620a506f736978506174680a710158010000002f71025803000000746d7071035801000000787104877105527106580a00000077726974655f7465787471078671085271092e";
    assert_eq!(refused(&unhex(bound)), "builtins.getattr");
    let path = call(global("pathlib", "PosixPath"), vec![s("/tmp/x")]);
    assert_eq!(refused_tree(&getattr(path, "touch")), "builtins.getattr");
    assert_eq!(
        refused_tree(&getattr(Pickle::List(vec![]), "append")),
        "builtins.getattr"
    );
    // With a default (which may be returned instead), a computed name, or any other use.
    assert_eq!(
        refused_tree(&call(
            global("builtins", "getattr"),
            vec![global("usermod", "C"), s("x"), Pickle::None]
        )),
        "builtins.getattr"
    );
    assert_eq!(
        refused_tree(&call(
            global("builtins", "getattr"),
            vec![
                global("usermod", "C"),
                call(global("usermod", "name"), vec![])
            ]
        )),
        "builtins.getattr"
    );
    assert_eq!(
        refused_tree(&Pickle::Reduce {
            callable: Box::new(global("builtins", "getattr")),
            args: Box::new(Pickle::List(vec![global("usermod", "C"), s("x")])),
        }),
        "builtins.getattr"
    );
    assert_eq!(
        refused_tree(&call(
            global("functools", "reduce"),
            vec![global("builtins", "getattr"), Pickle::List(vec![])]
        )),
        "builtins.getattr"
    );
}

#[test]
fn only_named_callables_are_called() {
    // `pydoc.locate`-like resolvers in a module the lists do not know: the call of their
    // result is refused, naming what built it.
    let resolved = call(global("somelib", "resolve"), vec![s("os.system")]);
    assert_eq!(
        refused_tree(&call(resolved.clone(), vec![s("id")])),
        "somelib.resolve"
    );
    assert_eq!(refused_tree(&new_obj(resolved.clone())), "somelib.resolve");
    assert_eq!(
        refused_tree(&Pickle::Obj {
            class: Box::new(resolved.clone()),
            args: vec![s("id")],
        }),
        "somelib.resolve"
    );
    // A built object's method reached through BUILD: the root is what built it.
    let built = Pickle::Build {
        object: Box::new(new_obj(global("usermod", "Runner"))),
        state: Box::new(Pickle::None),
    };
    assert_eq!(refused_tree(&call(built, vec![])), "usermod.Runner");
    // The result used as data is fine; a plain value as callable cannot be called at all.
    accepted_tree(&Pickle::List(vec![resolved.clone()]));
    accepted_tree(&call(Pickle::Int(1), vec![]));

    // functools.partial of a name may be called: CPython 3.11, protocol 2, of an instance of
    // `class KwOnly` whose `__getnewargs_ex__` has keyword arguments:
    // `partial(KwOnly.__new__, KwOnly, x=5)()`.
    let kw_only = "80026366756e63746f6f6c730a7061727469616c0a7100635f5f6275696c74696e5f5f0a676574617474720a7101635f5f6d61696e5f5f0a4b774f6e6c790a710258070000005f5f6e65775f5f710386710452710585710652710728680568028571087d7109580100000078710a4b05734e74710b622952710c7d710d680a4b0573622e";
    accepted(&unhex(kw_only));
    let partial = |f: Pickle, state_f: Pickle| Pickle::Build {
        object: Box::new(call(global("functools", "partial"), vec![f])),
        state: Box::new(tuple(vec![
            state_f,
            tuple(vec![]),
            Pickle::Dict(vec![]),
            Pickle::None,
        ])),
    };
    let named = || global("usermod", "f");
    accepted_tree(&call(partial(named(), named()), vec![]));
    accepted_tree(&call(
        call(global("functools", "partial"), vec![named(), s("arg")]),
        vec![],
    ));
    // The function it keeps is the one in its state: both must be names.
    assert_eq!(
        refused_tree(&call(partial(named(), resolved.clone()), vec![])),
        "functools.partial"
    );
    assert_eq!(
        refused_tree(&call(partial(resolved.clone(), named()), vec![])),
        "functools.partial"
    );
    // A partial of a denied name is refused for that name.
    assert_eq!(
        refused_tree(&call(partial(named(), global("os", "system")), vec![])),
        "os.system"
    );
}

#[test]
fn type_builds_no_classes() {
    // `C.__new__` is what NEWOBJ calls anyway; `type.__new__` creates classes.
    accepted_tree(&getattr(global("builtins", "object"), "__new__"));
    accepted(b"cusermod\nPoint.__new__\n.");
    assert_eq!(
        refused_tree(&getattr(global("builtins", "type"), "__new__")),
        "builtins.type.__new__"
    );
    // `type(None)` is how CPython pickles NoneType.
    accepted(b"\x80\x04\x8c\x08builtins\x8c\x04type\x93N\x85R.");
    accepted_tree(&global("builtins", "type"));
    let class = call(
        global("builtins", "type"),
        vec![
            s("X"),
            tuple(vec![global("builtins", "object")]),
            Pickle::Dict(vec![(s("__del__"), global("usermod", "f"))]),
        ],
    );
    assert_eq!(refused_tree(&class), "builtins.type");
    assert_eq!(
        refused_tree(&Pickle::NewObj {
            class: Box::new(global("builtins", "type")),
            args: Box::new(tuple(vec![s("X"), tuple(vec![]), Pickle::Dict(vec![])])),
            kwargs: None,
        }),
        "builtins.type"
    );
    assert_eq!(
        refused_tree(&Pickle::Obj {
            class: Box::new(global("builtins", "type")),
            args: vec![s("X"), tuple(vec![]), Pickle::Dict(vec![])],
        }),
        "builtins.type"
    );
}

#[test]
fn no_state_or_items_on_a_class_or_module_itself() {
    // BUILD on a class reached by getattr would setattr on the reader's class.
    let class = getattr(global("usermod", "Settings"), "Inner");
    let state = tuple(vec![
        Pickle::None,
        Pickle::Dict(vec![(s("__eq__"), global("builtins", "print"))]),
    ]);
    assert_eq!(
        refused_tree(&Pickle::Build {
            object: Box::new(class.clone()),
            state: Box::new(state),
        }),
        "usermod.Settings.Inner"
    );
    // The decoder already refuses BUILD on a bare global; a hand-built tree is checked too.
    assert_eq!(
        refused_tree(&Pickle::Build {
            object: Box::new(global("usermod", "C")),
            state: Box::new(Pickle::Dict(vec![])),
        }),
        "usermod.C"
    );
    assert_eq!(
        refused_tree(&Pickle::SetItems {
            target: Box::new(getattr(global("usermod", "REGISTRY"), "data")),
            items: vec![(s("k"), s("v"))],
        }),
        "usermod.REGISTRY.data"
    );
    assert_eq!(
        refused_tree(&Pickle::Appends {
            target: Box::new(global("usermod", "HOOKS")),
            items: vec![],
        }),
        "usermod.HOOKS"
    );
    assert_eq!(
        refused_tree(&Pickle::AddItems {
            target: Box::new(global("usermod", "SEEN")),
            items: vec![],
        }),
        "usermod.SEEN"
    );
}

#[test]
fn data_and_exceptions_of_refused_modules_pass() {
    for (module, name) in [
        ("os", "stat_result"),
        ("os", "terminal_size"),
        ("signal", "Signals"),
        ("socket", "AddressFamily"),
        ("subprocess", "CompletedProcess"),
        ("subprocess", "CalledProcessError"),
        ("subprocess", "TimeoutExpired"),
        ("subprocess", "SubprocessError"),
        ("shutil", "SameFileError"),
        ("pickle", "UnpicklingError"),
        ("threading", "BrokenBarrierError"),
        ("types", "SimpleNamespace"),
        ("pathlib", "PosixPath"),
        ("pathlib._local", "PosixPath"),
        ("copyreg", "_reconstructor"),
        ("multiprocessing.context", "AuthenticationError"),
        ("multiprocessing.managers", "RemoteError"),
    ] {
        accepted(&stack_global_call(module, name, "x"));
    }
    // Only directly in the module: not attributes of an exception, not deeper modules.
    assert_eq!(
        refused(b"csubprocess\nCalledProcessError.mro\n."),
        "subprocess.CalledProcessError.mro"
    );
    assert_eq!(
        refused(b"cos\nstat_result.count\n."),
        "os.stat_result.count"
    );
}

#[test]
fn user_modules_named_like_stdlib_ones_pass() {
    // `test.py`, `code.py`, `profile.py`, `resource.py` are common names for user modules:
    // only the dangerous parts of the stdlib modules of those names are refused.
    for module in [
        "test",
        "code",
        "profile",
        "resource",
        "tests.test_app",
        "app.code",
    ] {
        accepted_tree(&new_obj(global(module, "Point")));
    }
}

#[test]
fn numpy_and_pandas_like_reconstructors_pass() {
    // numpy 1 and 2 arrays, scalars and random states, a pandas block: names only.
    let array = |module: &str| Pickle::Build {
        object: Box::new(call(
            global(module, "_reconstruct"),
            vec![
                global("numpy", "ndarray"),
                tuple(vec![Pickle::Int(0)]),
                Pickle::Bytes(b"b".to_vec()),
            ],
        )),
        state: Box::new(tuple(vec![
            Pickle::Int(1),
            tuple(vec![Pickle::Int(2)]),
            call(
                global("numpy", "dtype"),
                vec![s("f8"), Pickle::Bool(false), Pickle::Bool(true)],
            ),
            Pickle::Bool(false),
            Pickle::Bytes(vec![0; 16]),
        ])),
    };
    accepted_tree(&array("numpy.core.multiarray"));
    accepted_tree(&array("numpy._core.multiarray"));
    accepted_tree(&call(
        global("numpy.core.multiarray", "scalar"),
        vec![global("numpy", "dtype"), Pickle::Bytes(vec![0; 8])],
    ));
    for ctor in [
        "__randomstate_ctor",
        "__bit_generator_ctor",
        "__generator_ctor",
    ] {
        accepted_tree(&call(
            global("numpy.random._pickle", ctor),
            vec![s("MT19937")],
        ));
    }
    accepted_tree(&call(
        global("pandas._libs.internals", "_unpickle_block"),
        vec![Pickle::None, Pickle::None, Pickle::Int(2)],
    ));
    // numpy's name resolvers and loaders are not.
    assert_eq!(
        refused_tree(&call(
            global("numpy.core", "_ufunc_reconstruct"),
            vec![s("os"), s("system")]
        )),
        "numpy.core._ufunc_reconstruct"
    );
    assert_eq!(
        refused_tree(&call(global("numpy", "load"), vec![s("/tmp/x.npy")])),
        "numpy.load"
    );
}

#[test]
fn the_manager_machinery_passes() {
    for name in [
        "Token",
        "RebuildProxy",
        "AutoProxy",
        "MakeProxyType",
        "BaseProxy",
        "DictProxy",
        "ListProxy",
        "IteratorProxy",
        "AcquirerProxy",
        "ConditionProxy",
        "EventProxy",
        "BarrierProxy",
        "NamespaceProxy",
        "ValueProxy",
        "ArrayProxy",
        "BaseListProxy",
        "PoolProxy",
        "_BaseDictProxy",
        "Namespace",
        "Value",
        "Array",
    ] {
        accepted_tree(&global(MANAGERS, name));
    }
    // The shapes the server writes.
    let address = tuple(vec![s("127.0.0.1"), Pickle::Int(50111)]);
    let t = token("dict", address, "7f5a");
    accepted_tree(&t);
    accepted_tree(&call(
        global(MANAGERS, "RebuildProxy"),
        vec![
            global(MANAGERS, "AutoProxy"),
            t,
            s("pickle"),
            Pickle::Dict(vec![(s("exposed"), tuple(vec![s("get")]))]),
        ],
    ));
    accepted_tree(&exception("builtins", "KeyError", vec![s("x")]));
    accepted_tree(&exception("queue", "Empty", vec![]));
    accepted_tree(&exception("threading", "BrokenBarrierError", vec![]));
}

/// CPython 3.11's pickles (protocols 0, 2 and 4) of ordinary values: datetime, Decimal,
/// collections, array, enums, nested classes, namedtuple, dataclass, uuid, pathlib, re,
/// SimpleNamespace, class- and static-method references, `int | str`, `type(None)`, the
/// builtin containers, os.stat_result, subprocess results and errors, signal enums,
/// functools.partial, exceptions, a Token and two proxies. `usermod2` is the test's module of
/// user classes.
const CPYTHON_ORDINARY: &[(&str, u8, &str)] = &[

        ("datetime", 0, "636461746574696d650a6461746574696d650a70300a28635f636f646563730a656e636f64650a70310a285607e8021d0c1e5c75303030305c75303030305c75303030305c75303030300a70320a566c6174696e310a70330a7470340a5270350a636461746574696d650a74696d657a6f6e650a70360a28636461746574696d650a74696d6564656c74610a70370a2849300a49300a49300a7470380a5270390a747031300a527031310a747031320a527031330a2e"),
        ("datetime", 2, "8002636461746574696d650a6461746574696d650a7100635f636f646563730a656e636f64650a7101580b00000007c3a8021d0c1e00000000710258060000006c6174696e317103867104527105636461746574696d650a74696d657a6f6e650a7106636461746574696d650a74696d6564656c74610a71074b004b004b0087710852710985710a52710b86710c52710d2e"),
        ("datetime", 4, "80049557000000000000008c086461746574696d65948c086461746574696d65949394430a07e8021d0c1e000000009468008c0874696d657a6f6e6594939468008c0974696d6564656c74619493944b004b004b008794529485945294869452942e"),
        ("decimal", 0, "63646563696d616c0a446563696d616c0a70300a2856332e31340a70310a7470320a5270330a2e"),
        ("decimal", 2, "800263646563696d616c0a446563696d616c0a71005804000000332e313471018571025271032e"),
        ("decimal", 4, "80049522000000000000008c07646563696d616c948c07446563696d616c9493948c04332e313494859452942e"),
        ("fraction", 0, "636672616374696f6e730a4672616374696f6e0a70300a284932320a49370a7470310a5270320a2e"),
        ("fraction", 2, "8002636672616374696f6e730a4672616374696f6e0a71004b164b078671015271022e"),
        ("fraction", 4, "80049522000000000000008c096672616374696f6e73948c084672616374696f6e9493944b164b07869452942e"),
        ("ordered_dict", 0, "63636f6c6c656374696f6e730a4f726465726564446963740a70300a28745270310a567a0a70320a49310a7356610a70330a49320a732e"),
        ("ordered_dict", 2, "800263636f6c6c656374696f6e730a4f726465726564446963740a7100295271012858010000007a71024b0158010000006171034b02752e"),
        ("ordered_dict", 4, "80049530000000000000008c0b636f6c6c656374696f6e73948c0b4f72646572656444696374949394295294288c017a944b018c0161944b02752e"),
        ("defaultdict", 0, "63636f6c6c656374696f6e730a64656661756c74646963740a70300a28635f5f6275696c74696e5f5f0a6c6973740a70310a7470320a5270330a566b0a70340a286c70350a49310a61732e"),
        ("defaultdict", 2, "800263636f6c6c656374696f6e730a64656661756c74646963740a7100635f5f6275696c74696e5f5f0a6c6973740a710185710252710358010000006b71045d71054b0161732e"),
        ("defaultdict", 4, "80049541000000000000008c0b636f6c6c656374696f6e73948c0b64656661756c74646963749493948c086275696c74696e73948c046c697374949394859452948c016b945d944b0161732e"),
        ("deque", 0, "63636f6c6c656374696f6e730a64657175650a70300a28745270310a49310a6149320a612e"),
        ("deque", 2, "800263636f6c6c656374696f6e730a64657175650a710029527101284b014b02652e"),
        ("deque", 4, "80049522000000000000008c0b636f6c6c656374696f6e73948c056465717565949394295294284b014b02652e"),
        ("array", 0, "6361727261790a61727261790a70300a2856640a70310a286c70320a46312e300a6146322e300a617470330a5270340a2e"),
        ("array", 2, "80026361727261790a61727261790a710058010000006471015d710228473ff0000000000000474000000000000000658671035271042e"),
        ("array", 4, "80049552000000000000008c056172726179948c145f61727261795f7265636f6e7374727563746f72949394288c056172726179948c0561727261799493948c0164944b104310000000000000f03f000000000000004094749452942e"),
        ("enum", 0, "63757365726d6f64320a436f6c6f720a70300a2849310a7470310a5270320a2e"),
        ("enum", 2, "800263757365726d6f64320a436f6c6f720a71004b018571015271022e"),
        ("enum", 4, "8004951c000000000000008c08757365726d6f6432948c05436f6c6f729493944b01859452942e"),
        ("int_flag", 0, "63757365726d6f64320a5065726d0a70300a2849360a7470310a5270320a2e"),
        ("int_flag", 2, "800263757365726d6f64320a5065726d0a71004b068571015271022e"),
        ("int_flag", 4, "8004951b000000000000008c08757365726d6f6432948c045065726d9493944b06859452942e"),
        ("nested_class", 0, "63636f70795f7265670a5f7265636f6e7374727563746f720a70300a28635f5f6275696c74696e5f5f0a676574617474720a70310a2863757365726d6f64320a4f757465720a70320a56496e6e65720a70330a7470340a5270350a635f5f6275696c74696e5f5f0a6f626a6563740a70360a4e7470370a5270380a286470390a56760a7031300a49310a73622e"),
        ("nested_class", 2, "8002635f5f6275696c74696e5f5f0a676574617474720a710063757365726d6f64320a4f757465720a71015805000000496e6e65727102867103527104298171057d710658010000007671074b0173622e"),
        ("nested_class", 4, "80049529000000000000008c08757365726d6f6432948c0b4f757465722e496e6e65729493942981947d948c0176944b0173622e"),
        ("namedtuple", 0, "63636f70795f7265670a5f7265636f6e7374727563746f720a70300a2863757365726d6f64320a4e540a70310a635f5f6275696c74696e5f5f0a7475706c650a70320a2849310a49320a7470330a7470340a5270350a2e"),
        ("namedtuple", 2, "800263757365726d6f64320a4e540a71004b014b028671018171022e"),
        ("namedtuple", 4, "8004951b000000000000008c08757365726d6f6432948c024e549493944b014b02869481942e"),
        ("dataclass", 0, "63636f70795f7265670a5f7265636f6e7374727563746f720a70300a2863757365726d6f64320a44430a70310a635f5f6275696c74696e5f5f0a6f626a6563740a70320a4e7470330a5270340a286470350a56610a70360a49310a7356620a70370a286c70380a49320a6173622e"),
        ("dataclass", 2, "800263757365726d6f64320a44430a7100298171017d71022858010000006171034b0158010000006271045d71054b026175622e"),
        ("dataclass", 4, "8004952a000000000000008c08757365726d6f6432948c0244439493942981947d94288c0161944b018c0162945d944b026175622e"),
        ("uuid", 0, "63636f70795f7265670a5f7265636f6e7374727563746f720a70300a2863757569640a555549440a70310a635f5f6275696c74696e5f5f0a6f626a6563740a70320a4e7470330a5270340a286470350a56696e740a70360a49350a73622e"),
        ("uuid", 2, "800263757569640a555549440a7100298171017d71025803000000696e7471034b0573622e"),
        ("uuid", 4, "80049520000000000000008c0475756964948c04555549449493942981947d948c03696e74944b0573622e"),
        ("path", 0, "63706174686c69620a50757265506f736978506174680a70300a28562f0a70310a56610a70320a56620a70330a7470340a5270350a2e"),
        ("path", 2, "800263706174686c69620a50757265506f736978506174680a710058010000002f7101580100000061710258010000006271038771045271052e"),
        ("path", 4, "8004952d000000000000008c07706174686c6962948c0d50757265506f736978506174689493948c012f948c0161948c016294879452942e"),
        ("pattern", 0, "6372650a5f636f6d70696c650a70300a2856612b0a70310a4933340a7470320a5270330a2e"),
        ("pattern", 2, "80026372650a5f636f6d70696c650a71005802000000612b71014b228671025271032e"),
        ("pattern", 4, "8004951e000000000000008c027265948c085f636f6d70696c659493948c02612b944b22869452942e"),
        ("namespace", 0, "6374797065730a53696d706c654e616d6573706163650a70300a28745270310a286470320a56610a70330a49310a73622e"),
        ("namespace", 2, "80026374797065730a53696d706c654e616d6573706163650a7100295271017d710258010000006171034b0173622e"),
        ("namespace", 4, "8004952a000000000000008c057479706573948c0f53696d706c654e616d6573706163659493942952947d948c0161944b0173622e"),
        ("classmethod_ref", 0, "635f5f6275696c74696e5f5f0a676574617474720a70300a2863757365726d6f64320a576974684d6574686f640a70310a56636d0a70320a7470330a5270340a2e"),
        ("classmethod_ref", 2, "8002635f5f6275696c74696e5f5f0a676574617474720a710063757365726d6f64320a576974684d6574686f640a71015802000000636d71028671035271042e"),
        ("classmethod_ref", 4, "8004953b000000000000008c086275696c74696e73948c07676574617474729493948c08757365726d6f6432948c0a576974684d6574686f649493948c02636d94869452942e"),
        ("staticmethod_ref", 0, "635f5f6275696c74696e5f5f0a676574617474720a70300a2863757365726d6f64320a576974684d6574686f640a70310a56736d0a70320a7470330a5270340a2e"),
        ("staticmethod_ref", 2, "8002635f5f6275696c74696e5f5f0a676574617474720a710063757365726d6f64320a576974684d6574686f640a71015802000000736d71028671035271042e"),
        ("staticmethod_ref", 4, "8004951e000000000000008c08757365726d6f6432948c0d576974684d6574686f642e736d9493942e"),
        ("union_type", 0, "635f5f6275696c74696e5f5f0a7265647563650a70300a28635f6f70657261746f720a6f725f0a70310a28635f5f6275696c74696e5f5f0a6c6f6e670a70320a635f5f6275696c74696e5f5f0a756e69636f64650a70330a7470340a7470350a5270360a2e"),
        ("union_type", 2, "8002635f5f6275696c74696e5f5f0a7265647563650a7100635f6f70657261746f720a6f725f0a7101635f5f6275696c74696e5f5f0a6c6f6e670a7102635f5f6275696c74696e5f5f0a756e69636f64650a71038671048671055271062e"),
        ("union_type", 4, "80049550000000000000008c0a5f66756e63746f6f6c73948c067265647563659493948c095f6f70657261746f72948c036f725f9493948c086275696c74696e73948c03696e7494939468068c037374729493948694869452942e"),
        ("none_type", 0, "635f5f6275696c74696e5f5f0a747970650a70300a284e7470310a5270320a2e"),
        ("none_type", 2, "8002635f5f6275696c74696e5f5f0a747970650a71004e8571015271022e"),
        ("none_type", 4, "8004951a000000000000008c086275696c74696e73948c04747970659493944e859452942e"),
        ("sets_and_bytes", 0, "28635f5f6275696c74696e5f5f0a7365740a70300a28286c70310a49310a617470320a5270330a635f5f6275696c74696e5f5f0a66726f7a656e7365740a70340a28286c70350a49320a617470360a5270370a635f636f646563730a656e636f64650a70380a2856785c75303030300a70390a566c6174696e310a7031300a747031310a527031320a635f5f6275696c74696e5f5f0a6279746561727261790a7031330a2867380a2856790a7031340a6731300a747031350a527031360a747031370a527031380a635f5f6275696c74696e5f5f0a636f6d706c65780a7031390a2846302e300a46312e300a747032300a527032310a635f5f6275696c74696e5f5f0a7872616e67650a7032320a2849300a49330a49310a747032330a527032340a635f5f6275696c74696e5f5f0a736c6963650a7032350a284e49310a4e747032360a527032370a747032380a2e"),
        ("sets_and_bytes", 2, "800228635f5f6275696c74696e5f5f0a7365740a71005d71014b0161857102527103635f5f6275696c74696e5f5f0a66726f7a656e7365740a71045d71054b0261857106527107635f636f646563730a656e636f64650a710858020000007800710958060000006c6174696e31710a86710b52710c635f5f6275696c74696e5f5f0a6279746561727261790a710d6808580100000079710e680a86710f527110857111527112635f5f6275696c74696e5f5f0a636f6d706c65780a7113470000000000000000473ff0000000000000867114527115635f5f6275696c74696e5f5f0a7872616e67650a71164b004b034b01877117527118635f5f6275696c74696e5f5f0a736c6963650a71194e4b014e87711a52711b74711c2e"),
        ("sets_and_bytes", 4, "8004958300000000000000288f94284b0190284b02919443027800948c086275696c74696e73948c09627974656172726179949394430179948594529468038c07636f6d706c6578949394470000000000000000473ff00000000000008694529468038c0572616e67659493944b004b034b018794529468038c05736c6963659493944e4b014e8794529474942e"),
        ("stat_result", 0, "636f730a737461745f726573756c740a70300a282849300a49310a49320a49330a49340a49350a49360a49370a49380a49390a7470310a286470320a5673745f6174696d650a70330a49370a735673745f6d74696d650a70340a49380a735673745f6374696d650a70350a49390a735673745f6174696d655f6e730a70360a4e735673745f6d74696d655f6e730a70370a4e735673745f6374696d655f6e730a70380a4e735673745f626c6b73697a650a70390a4e735673745f626c6f636b730a7031300a4e735673745f726465760a7031310a4e73747031320a527031330a2e"),
        ("stat_result", 2, "8002636f730a737461745f726573756c740a7100284b004b014b024b034b044b054b064b074b084b097471017d710228580800000073745f6174696d6571034b07580800000073745f6d74696d6571044b08580800000073745f6374696d6571054b09580b00000073745f6174696d655f6e7371064e580b00000073745f6d74696d655f6e7371074e580b00000073745f6374696d655f6e7371084e580a00000073745f626c6b73697a6571094e580900000073745f626c6f636b73710a4e580700000073745f72646576710b4e7586710c52710d2e"),
        ("stat_result", 4, "800495af000000000000008c026f73948c0b737461745f726573756c74949394284b004b014b024b034b044b054b064b074b084b0974947d94288c0873745f6174696d65944b078c0873745f6d74696d65944b088c0873745f6374696d65944b098c0b73745f6174696d655f6e73944e8c0b73745f6d74696d655f6e73944e8c0b73745f6374696d655f6e73944e8c0a73745f626c6b73697a65944e8c0973745f626c6f636b73944e8c0773745f72646576944e75869452942e"),
        ("completed_process", 0, "63636f70795f7265670a5f7265636f6e7374727563746f720a70300a2863636f6d6d616e64730a436f6d706c6574656450726f636573730a70310a635f5f6275696c74696e5f5f0a6f626a6563740a70320a4e7470330a5270340a286470350a56617267730a70360a286c70370a566c730a70380a61735672657475726e636f64650a70390a49300a73567374646f75740a7031300a4e73567374646572720a7031310a4e73622e"),
        ("completed_process", 2, "800263636f6d6d616e64730a436f6d706c6574656450726f636573730a7100298171017d71022858040000006172677371035d710458020000006c73710561580a00000072657475726e636f646571064b0058060000007374646f757471074e580600000073746465727271084e75622e"),
        ("completed_process", 4, "8004955d000000000000008c0a73756270726f63657373948c10436f6d706c6574656450726f636573739493942981947d94288c0461726773945d948c026c7394618c0a72657475726e636f6465944b008c067374646f7574944e8c06737464657272944e75622e"),
        ("called_process_error", 0, "63636f6d6d616e64730a43616c6c656450726f636573734572726f720a70300a2849310a56780a70310a7470320a5270330a286470340a5672657475726e636f64650a70350a49310a7356636d640a70360a67310a73566f75747075740a70370a4e73567374646572720a70380a4e73622e"),
        ("called_process_error", 2, "800263636f6d6d616e64730a43616c6c656450726f636573734572726f720a71004b0158010000007871018671025271037d710428580a00000072657475726e636f646571054b015803000000636d647106680158060000006f757470757471074e580600000073746465727271084e75622e"),
        ("called_process_error", 4, "8004955f000000000000008c0a73756270726f63657373948c1243616c6c656450726f636573734572726f729493944b018c017894869452947d94288c0a72657475726e636f6465944b018c03636d649468038c066f7574707574944e8c06737464657272944e75622e"),
        ("signal", 0, "637369676e616c0a5369676e616c730a70300a2849320a7470310a5270320a2e"),
        ("signal", 2, "8002637369676e616c0a5369676e616c730a71004b028571015271022e"),
        ("signal", 4, "8004951c000000000000008c067369676e616c948c075369676e616c739493944b02859452942e"),
        ("partial_max", 0, "6366756e63746f6f6c730a7061727469616c0a70300a28635f5f6275696c74696e5f5f0a6d61780a70310a7470320a5270330a2867310a2849310a7470340a286470350a4e7470360a622e"),
        ("partial_max", 2, "80026366756e63746f6f6c730a7061727469616c0a7100635f5f6275696c74696e5f5f0a6d61780a71018571025271032868014b018571047d71054e747106622e"),
        ("partial_max", 4, "8004953d000000000000008c0966756e63746f6f6c73948c077061727469616c9493948c086275696c74696e73948c036d6178949394859452942868054b0185947d944e7494622e"),
        ("exception", 0, "63657863657074696f6e730a4b65794572726f720a70300a2856780a70310a7470320a5270330a2e"),
        ("exception", 2, "800263657863657074696f6e730a4b65794572726f720a710058010000007871018571025271032e"),
        ("exception", 4, "80049521000000000000008c086275696c74696e73948c084b65794572726f729493948c017894859452942e"),
        ("token", 0, "63636f70795f7265670a5f7265636f6e7374727563746f720a70300a28636d756c746970726f63657373696e672e6d616e61676572730a546f6b656e0a70310a635f5f6275696c74696e5f5f0a6f626a6563740a70320a4e7470330a5270340a2856646963740a70350a28563132372e302e302e310a70360a4935303131310a7470370a56376635610a70380a7470390a622e"),
        ("token", 2, "8002636d756c746970726f63657373696e672e6d616e61676572730a546f6b656e0a710029817101580400000064696374710258090000003132372e302e302e3171034dbfc38671045804000000376635617105877106622e"),
        ("token", 4, "8004954b000000000000008c186d756c746970726f63657373696e672e6d616e6167657273948c05546f6b656e9493942981948c0464696374948c093132372e302e302e31944dbfc386948c0437663561948794622e"),
        ("dict_proxy", 0, "636d756c746970726f63657373696e672e6d616e61676572730a52656275696c6450726f78790a70300a28636d756c746970726f63657373696e672e6d616e61676572730a4469637450726f78790a70310a63636f70795f7265670a5f7265636f6e7374727563746f720a70320a28636d756c746970726f63657373696e672e6d616e61676572730a546f6b656e0a70330a635f5f6275696c74696e5f5f0a6f626a6563740a70340a4e7470350a5270360a2856646963740a70370a28563132372e302e302e310a70380a4935303131310a7470390a56376635610a7031300a747031310a62567069636b6c650a7031320a28647031330a747031340a527031350a2e"),
        ("dict_proxy", 2, "8002636d756c746970726f63657373696e672e6d616e61676572730a52656275696c6450726f78790a710028636d756c746970726f63657373696e672e6d616e61676572730a4469637450726f78790a7101636d756c746970726f63657373696e672e6d616e61676572730a546f6b656e0a710229817103580400000064696374710458090000003132372e302e302e3171054dbfc386710658040000003766356171078771086258060000007069636b6c6571097d710a74710b52710c2e"),
        ("dict_proxy", 4, "8004957e000000000000008c186d756c746970726f63657373696e672e6d616e6167657273948c0c52656275696c6450726f78799493942868008c094469637450726f787994939468008c05546f6b656e9493942981948c0464696374948c093132372e302e302e31944dbfc386948c0437663561948794628c067069636b6c65947d94749452942e"),
        ("auto_proxy", 0, "636d756c746970726f63657373696e672e6d616e61676572730a52656275696c6450726f78790a70300a28636d756c746970726f63657373696e672e6d616e61676572730a4175746f50726f78790a70310a63636f70795f7265670a5f7265636f6e7374727563746f720a70320a28636d756c746970726f63657373696e672e6d616e61676572730a546f6b656e0a70330a635f5f6275696c74696e5f5f0a6f626a6563740a70340a4e7470350a5270360a2856646963740a70370a28563132372e302e302e310a70380a4935303131310a7470390a56376635610a7031300a747031310a62567069636b6c650a7031320a28647031330a566578706f7365640a7031340a28566765740a7031350a747031360a73747031370a527031380a2e"),
        ("auto_proxy", 2, "8002636d756c746970726f63657373696e672e6d616e61676572730a52656275696c6450726f78790a710028636d756c746970726f63657373696e672e6d616e61676572730a4175746f50726f78790a7101636d756c746970726f63657373696e672e6d616e61676572730a546f6b656e0a710229817103580400000064696374710458090000003132372e302e302e3171054dbfc386710658040000003766356171078771086258060000007069636b6c6571097d710a58070000006578706f736564710b5803000000676574710c85710d7374710e52710f2e"),
        ("auto_proxy", 4, "80049591000000000000008c186d756c746970726f63657373696e672e6d616e6167657273948c0c52656275696c6450726f78799493942868008c094175746f50726f787994939468008c05546f6b656e9493942981948c0464696374948c093132372e302e302e31944dbfc386948c0437663561948794628c067069636b6c65947d948c076578706f736564948c0367657494859473749452942e"),
];

#[test]
fn ordinary_cpython_values_pass() {
    for (name, proto, hex) in CPYTHON_ORDINARY {
        let value = load(&unhex(hex));
        if let Err(e) = check_globals(&value) {
            panic!("{name} (protocol {proto}): {e}");
        }
        accepted_tree(&normalize(value));
    }
}

#[test]
fn any_depth_is_walked_without_recursion() {
    // 200 000 nested lists (far past Limits::max_depth) with os.system at the bottom, on a
    // small stack: a recursive walk would overflow it.
    let handle = std::thread::Builder::new()
        .stack_size(256 * 1024)
        .spawn(|| {
            let mut value = system("id");
            for _ in 0..200_000 {
                value = Pickle::List(vec![value]);
            }
            let result = check_globals(&value).map_err(|e| e.global);
            // Dropping recurses once per level: leak the tree instead.
            std::mem::forget(value);
            result
        })
        .unwrap();
    assert_eq!(handle.join().unwrap(), Err("os.system".to_owned()));
}
