//! Refusing pickles that name dangerous callables: [`check_globals`].
//!
//! [`loads`](super::loads) never runs anything, but the server hands what it stores back to
//! other clients, whose `pickle.loads` imports every global the pickle names and calls the
//! `REDUCE`/`NEWOBJ`/`OBJ`/`INST` callables with the arguments it carries. A stored
//! `os.system('...')` would run on the next reader's machine. [`check_globals`] refuses such
//! trees before they are stored.
//!
//! # What a reader resolves
//! Everything the server sends is protocol 4 ([`dumps`](super::dumps)), so a reader resolves
//! a name with dots (`STACK_GLOBAL('pathlib', 'os.system')`, or a protocol 0 `GLOBAL` carrying
//! one) attribute by attribute, and `getattr(X, 'a')` (how CPython pickles nested classes and
//! class-level methods below protocol 4) is the same lookup. Both are checked as one dotted
//! *path* (`pathlib.os.system`), never only its first two parts. Protocol 0-2 names arrive
//! already translated by `loads` (`__builtin__.eval` is `builtins.eval` in the tree, as in
//! CPython's unpickler), so the tables hold Python 3 names; `__builtin__` itself is refused
//! too, for protocol 3+ pickles that spell it literally.
//!
//! # The rules
//! A path is refused when
//! 1. it is, or lies under, an entry of [`DENIED`] (`os` covers `os.system` and
//!    `os.path.join`), unless it is exactly one of the data constructors of [`ALLOWED`]
//!    (`os.stat_result`, the manager proxy machinery, ...) or an exception class directly in a
//!    refused module (`subprocess.CalledProcessError`: a name ending in `Error`, `Exception`
//!    or `Warning`; building one only stores its arguments);
//! 2. any part after the first is one of [`MODULE_ATTRIBUTES`] (`pathlib.os`: many modules
//!    import `os` or `sys`, so a dotted name or `getattr` reaches them from anywhere);
//! 3. any attribute part (after the module) is one of [`DENIED_NAMES`], wherever it lives
//!    (`system`, `popen`, `eval`, `open`, `loads`, ...: aliases such as
//!    `from os import system` in some innocent module), or is a dunder other than
//!    `__new__`, `__newobj__` and `__newobj_ex__` (`__globals__`, `__builtins__`,
//!    `__subclasses__`, ...).
//!
//! And the tree's structure is checked, because a deny-list of names only means something
//! when nothing can be called that the pickle does not name:
//! 4. `builtins.getattr` is accepted only as CPython writes it: `getattr(P, 'name')` where `P`
//!    is itself a named path (a class or module the pickle names); the whole path is checked.
//!    `getattr` on an object built while unpickling (`Path('~/.bashrc').write_text`, a bound
//!    method of an instance) or used any other way is refused.
//! 5. What `REDUCE`, `OBJ`/`INST` or `NEWOBJ` call must be a named path, or a
//!    `functools.partial` of one (how protocols 2-3 pickle keyword-only constructors), or a
//!    plain value (not callable: the reader just fails). Calling the result of another call
//!    would let a name resolver (`pydoc.locate`, numpy's `_ufunc_reconstruct`, ...) pick what
//!    runs.
//! 6. `builtins.type` may be called with one argument only (`type(None)`, as CPython pickles
//!    `NoneType`): with three it creates classes.
//! 7. `BUILD`, `APPEND(S)`, `SETITEM(S)` and `ADDITEMS` may not target a named path: that
//!    would set attributes on, or add items to, a class or module of the reader itself.
//!
//! # Trade-offs
//! - Refused although CPython can write them: bound methods of instances (`obj.method`
//!   pickles as `getattr(obj, 'method')`), dunder attributes other than `__new__`, user
//!   functions or nested classes whose name is in [`DENIED_NAMES`] (a `usermod.load` function
//!   sent as a value), attributes named after [`MODULE_ATTRIBUTES`], a reducer whose callable
//!   is a built object other than a `functools.partial` of a name. These are references to
//!   code rather than data. Instances of user classes, enum members (pickled by value in
//!   3.11-3.13), nested classes, class- and static-method references pass; so do user modules
//!   named like stdlib ones whose danger is in a few names (`test`, `code`, `profile`,
//!   `resource`: only `test.support`, `code.interact`, ... are refused).
//! - A deny-list is not an allow-list: a stdlib or third-party function with side effects not
//!   listed here can still be named (a module-level alias like `_open = open`, a method of a
//!   class of an allowed module called with a built instance). This closes the known and
//!   obvious routes (arbitrary code, imports by name, processes, files, sockets, nested
//!   deserialisers, reflection); a deployment that knows its clients' classes should add an
//!   allow-list on top.
//! - Proxies (`RebuildProxy`) are accepted as the managers build them; this check does not
//!   look at the address in their token, which the reader will connect to.

use std::borrow::Cow;
use std::collections::{HashMap, HashSet};
use std::sync::OnceLock;

use super::{as_global, Pickle};

/// A global that [`check_globals`] refuses: the path the reader would resolve and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the pickle names {global}, which could run code on whoever reads it back ({why})")]
pub struct UnsafeGlobal {
    /// The dotted path the reader would resolve: `module.name`, extended by the attributes of
    /// a `getattr` chain (`pathlib.Path.write_text`).
    pub global: String,
    /// Why it is refused.
    pub why: &'static str,
}

/// Paths refused, with everything under them (`os` covers `os.system`; `builtins.eval` only
/// that), and why. Module parts compare ASCII-case-insensitively (an import on a
/// case-insensitive file system with `PYTHONCASEOK` ignores case).
pub const DENIED: &[(&str, &str)] = &[
    // ---- builtins ----
    (
        "builtins.eval",
        "evaluates a Python expression given as a string",
    ),
    ("builtins.exec", "runs Python statements given as a string"),
    ("builtins.compile", "turns source text into code objects"),
    ("builtins.__import__", "imports any module by name"),
    ("builtins.open", "opens, creates or truncates any file"),
    ("builtins.type.__new__", "creates classes"),
    (
        "builtins.getattr",
        "reads any attribute; only getattr(<a class or module the pickle names>, '<name>') is \
         accepted, as CPython writes it",
    ),
    (
        "builtins.setattr",
        "changes any attribute of any object, classes and modules included",
    ),
    (
        "builtins.delattr",
        "deletes attributes of any object, classes and modules included",
    ),
    (
        "builtins.globals",
        "hands out a module namespace, which holds every function in it",
    ),
    (
        "builtins.locals",
        "hands out a namespace, which holds every function in it",
    ),
    (
        "builtins.vars",
        "hands out any object's or module's namespace",
    ),
    (
        "builtins.input",
        "blocks reading the reader's standard input",
    ),
    (
        "builtins.breakpoint",
        "starts a debugger, which runs whatever it is told",
    ),
    (
        "builtins.help",
        "starts the interactive help: imports modules by name, runs a pager",
    ),
    (
        "builtins.exit",
        "closes stdin and raises SystemExit in the reader",
    ),
    (
        "builtins.quit",
        "closes stdin and raises SystemExit in the reader",
    ),
    ("builtins.copyright", "site's interactive printer"),
    ("builtins.credits", "site's interactive printer"),
    (
        "builtins.license",
        "site's interactive printer: pages through standard input",
    ),
    (
        "__builtin__",
        "Python 2's builtins: loads translates it below protocol 3, so a literal one means a \
         shim on the reader's side",
    ),
    ("__builtins__", "the builtins namespace under another name"),
    (
        "_sitebuiltins",
        "site's interactive helpers (help, license, exit)",
    ),
    // ---- running code, importing, resolving names ----
    // `code`, `profile`, `resource` and `test` by name: user modules are often called so.
    ("code.InteractiveInterpreter", "runs source text"),
    ("code.InteractiveConsole", "runs source text"),
    ("code.interact", "runs source text read from the terminal"),
    ("code.compile_command", "compiles source text"),
    ("code.CommandCompiler", "compiles source text"),
    ("codeop", "compiles source text"),
    ("runpy", "runs modules and scripts by name or path"),
    ("importlib", "imports any module by name"),
    (
        "_frozen_importlib",
        "importlib's frozen bootstrap: loaders that compile and execute source",
    ),
    (
        "_frozen_importlib_external",
        "importlib's frozen path loaders: source_to_code and exec_module run source text",
    ),
    (
        "_imp",
        "the interpreter's import primitives: builtin and extension module loading",
    ),
    ("imp", "the old import machinery: load_source, load_module"),
    (
        "pkgutil",
        "resolve_name() imports and resolves any dotted name",
    ),
    (
        "pydoc",
        "locate() resolves any dotted name; its pagers run shell commands",
    ),
    ("zipimport", "imports code from any zip file"),
    ("site", "addsitedir() executes .pth files"),
    (
        "timeit",
        "Timer compiles and runs statements given as strings",
    ),
    (
        "cProfile",
        "run()/runctx() execute statements given as strings",
    ),
    ("profile.run", "executes a statement given as a string"),
    ("profile.runctx", "executes a statement given as a string"),
    (
        "profile.Profile",
        "run()/runctx() execute statements given as strings",
    ),
    ("profile.main", "runs a script"),
    ("pdb", "the debugger: run() executes strings"),
    ("bdb", "the debugger base: run() executes strings"),
    ("trace", "runctx() executes strings"),
    ("doctest", "runs the examples of any docstring"),
    (
        "unittest",
        "imports and runs test modules; mock patches anything",
    ),
    (
        "test.support",
        "CPython's test helpers run scripts and subprocesses",
    ),
    ("idlelib", "IDLE runs code and subprocesses"),
    ("tkinter", "a Tcl interpreter: Tcl's exec runs programs"),
    ("_tkinter", "a Tcl interpreter: Tcl's exec runs programs"),
    ("turtle", "tkinter underneath"),
    ("ensurepip", "runs the pip installer"),
    ("venv", "creates environments and runs pip"),
    ("distutils", "runs compilers and subprocesses"),
    ("setuptools", "runs compilers and subprocesses"),
    ("pip", "installs packages: runs setup code"),
    ("py_compile", "writes .pyc files anywhere"),
    ("compileall", "writes .pyc files anywhere"),
    (
        "types",
        "FunctionType, CodeType, MethodType and new_class build functions, code and classes",
    ),
    (
        "typing.get_type_hints",
        "evaluates annotation strings with eval()",
    ),
    (
        "typing._eval_type",
        "evaluates annotation strings with eval()",
    ),
    ("typing.ForwardRef", "evaluates its string with eval()"),
    (
        "typing.evaluate_forward_ref",
        "evaluates annotation strings with eval()",
    ),
    ("annotationlib", "evaluates annotation strings"),
    (
        "inspect",
        "reflection: getmembers(), getattr_static() and getmodule() hand out any module or \
         function",
    ),
    (
        "gc",
        "get_objects() and get_referrers() hand out any live object",
    ),
    (
        "operator.attrgetter",
        "reads any dotted attribute of what it is given",
    ),
    (
        "_operator.attrgetter",
        "reads any dotted attribute of what it is given",
    ),
    (
        "operator.methodcaller",
        "calls any method of what it is given",
    ),
    (
        "_operator.methodcaller",
        "calls any method of what it is given",
    ),
    (
        "operator.call",
        "calls whatever it is given, built objects included",
    ),
    (
        "_operator.call",
        "calls whatever it is given, built objects included",
    ),
    (
        "copy._reconstruct",
        "calls whatever function its arguments name",
    ),
    // ---- deserialisers: a nested payload this check never sees ----
    ("marshal", "loads() makes code objects"),
    (
        "pickle",
        "loads() reads a nested pickle this check never sees",
    ),
    (
        "_pickle",
        "loads() reads a nested pickle this check never sees",
    ),
    ("pickletools", "pickle's tooling; no data pickles to it"),
    (
        "copyreg",
        "pickle() and add_extension() change how the reader pickles; only _reconstructor, \
         __newobj__ and __newobj_ex__ rebuild data",
    ),
    ("shelve", "opens database files and unpickles from them"),
    ("dbm", "opens and creates database files"),
    (
        "cloudpickle",
        "rebuilds functions and code objects, imports modules by name",
    ),
    (
        "dill",
        "rebuilds functions and code objects, imports modules by name",
    ),
    ("joblib", "loads pickles from files"),
    ("yaml", "load() builds arbitrary Python objects"),
    ("numpy.ctypeslib", "loads shared libraries"),
    ("numpy.testing", "runs subprocesses"),
    ("numpy.f2py", "runs compilers"),
    ("numpy.distutils", "runs compilers"),
    // ---- processes, the interpreter, native code ----
    (
        "os",
        "system, exec*, spawn*, popen, fork, kill, remove, rename, chmod: the operating system",
    ),
    ("posix", "what os wraps: os.system pickles as posix.system"),
    (
        "nt",
        "what os wraps on Windows: os.system pickles as nt.system",
    ),
    ("subprocess", "runs programs"),
    ("_posixsubprocess", "fork_exec() runs programs"),
    ("_winapi", "CreateProcess() runs programs"),
    ("msvcrt", "Windows C runtime: file descriptors, the console"),
    ("winreg", "edits the Windows registry"),
    ("pty", "spawn() runs programs on a terminal"),
    ("tty", "changes terminal modes"),
    ("termios", "changes terminal modes"),
    ("fcntl", "ioctl and file-descriptor control"),
    (
        "sys",
        "modules, settrace, setprofile, exit, the standard streams: every module and the \
         interpreter itself",
    ),
    ("platform", "runs programs (uname, ver) to answer"),
    ("signal", "installs handlers and kills processes"),
    ("_signal", "installs handlers and kills processes"),
    ("faulthandler", "writes to files and can crash the process"),
    ("resource.setrlimit", "can starve or kill the process"),
    ("resource.prlimit", "can starve or kill any process"),
    (
        "atexit",
        "register() runs any callable when the reader exits",
    ),
    (
        "weakref.finalize",
        "runs any callable when an object dies or the reader exits",
    ),
    ("_thread", "start_new_thread() runs any callable"),
    (
        "threading",
        "Thread and Timer run callables; _start_new_thread",
    ),
    (
        "concurrent",
        "executors run callables in threads and processes",
    ),
    ("asyncio", "subprocesses, connections and servers"),
    (
        "multiprocessing",
        "starts processes, rebuilds file descriptors, sockets and semaphores, \
         util.spawnv_passfds runs programs; only the managers' proxy machinery and exceptions \
         are data",
    ),
    (
        "_multiprocessing",
        "SemLock rebuilding opens named semaphores",
    ),
    ("ctypes", "calls any C function, reads and writes memory"),
    ("_ctypes", "calls any C function, reads and writes memory"),
    ("cffi", "calls any C function, reads and writes memory"),
    ("mmap", "maps files and memory"),
    // ---- files ----
    ("shutil", "copies, moves and deletes files and trees"),
    ("tempfile", "creates files and directories"),
    ("fileinput", "rewrites files in place"),
    ("zipfile", "creates, overwrites and extracts archives"),
    ("tarfile", "creates, overwrites and extracts archives"),
    ("zipapp", "writes archives"),
    ("gzip.GzipFile", "opens, creates or truncates a file"),
    ("bz2.BZ2File", "opens, creates or truncates a file"),
    ("lzma.LZMAFile", "opens, creates or truncates a file"),
    ("io.FileIO", "opens, creates or truncates a file"),
    ("_io.FileIO", "opens, creates or truncates a file"),
    (
        "logging.config",
        "fileConfig() and dictConfig() resolve dotted names and use eval(); listen() serves \
         configuration over a socket",
    ),
    (
        "logging.handlers",
        "handlers open files, sockets, SMTP and HTTP connections",
    ),
    (
        "logging.FileHandler",
        "opens (truncates) its file when created",
    ),
    ("logging.basicConfig", "installs handlers that open files"),
    ("sqlite3", "creates database files and loads extensions"),
    ("mailbox", "writes mailbox files"),
    (
        "pathlib",
        "Path methods write, delete, rename and chmod files; only the path classes are data",
    ),
    ("uuid._get_command_stdout", "runs programs"),
    (
        "_osx_support",
        "_read_output() and _find_build_tool() run shell commands, on any platform",
    ),
    ("_aix_support", "runs programs to read the system's level"),
    (
        "_bootsubprocess",
        "runs programs (the build's subprocess stand-in)",
    ),
    ("antigravity", "opens the web browser when imported"),
    // ---- network ----
    ("socket", "opens connections and servers"),
    ("_socket", "opens connections and servers"),
    ("ssl", "opens connections, reads keys from files"),
    ("socketserver", "runs servers"),
    ("http.server", "runs servers; CGI runs programs"),
    ("http.client", "makes outgoing HTTP connections"),
    (
        "urllib.request",
        "urlopen() and urlretrieve() fetch any URL and write files",
    ),
    ("ftplib", "connects to servers"),
    ("smtplib", "connects to servers"),
    ("poplib", "connects to servers"),
    ("imaplib", "connects to servers"),
    ("nntplib", "connects to servers"),
    ("telnetlib", "connects to servers"),
    ("xmlrpc", "calls remote methods; runs servers"),
    ("webbrowser", "runs the browser, a program, on any URL"),
    ("getpass", "reads the terminal"),
    ("curses", "takes over the terminal"),
];

/// Exact paths accepted although a [`DENIED`] entry covers them: data constructors CPython
/// writes for ordinary values, and the managers' proxy machinery. Nothing under them is
/// accepted (`multiprocessing.managers.DictProxy._callmethod` is refused).
pub const ALLOWED: &[&str] = &[
    // What a proxy, a token or a manager error pickles to; all only store their arguments
    // (a proxy connects to the manager at its token's address, as any proxy does).
    "multiprocessing.managers.Token",
    "multiprocessing.managers.RebuildProxy",
    "multiprocessing.managers.AutoProxy",
    "multiprocessing.managers.MakeProxyType",
    "multiprocessing.managers.BaseProxy",
    "multiprocessing.managers.AcquirerProxy",
    "multiprocessing.managers.ArrayProxy",
    "multiprocessing.managers.BarrierProxy",
    "multiprocessing.managers.BaseListProxy",
    "multiprocessing.managers.BasePoolProxy",
    "multiprocessing.managers.ConditionProxy",
    "multiprocessing.managers.DictProxy",
    "multiprocessing.managers._BaseDictProxy",
    "multiprocessing.managers.EventProxy",
    "multiprocessing.managers.IteratorProxy",
    "multiprocessing.managers.ListProxy",
    "multiprocessing.managers.NamespaceProxy",
    "multiprocessing.managers.PoolProxy",
    "multiprocessing.managers.ValueProxy",
    "multiprocessing.managers.Namespace",
    "multiprocessing.managers.Value",
    "multiprocessing.managers.Array",
    "multiprocessing.managers.RemoteError",
    "multiprocessing.context.AuthenticationError",
    "multiprocessing.context.BufferTooShort",
    "multiprocessing.context.ProcessError",
    "multiprocessing.context.TimeoutError",
    "multiprocessing.BufferTooShort",
    "multiprocessing.pool.RemoteTraceback",
    "multiprocessing.pool.rebuild_exc",
    // copyreg's reconstructors: how protocols 0-1 (and some classes) rebuild instances.
    "copyreg._reconstructor",
    "copyreg.__newobj__",
    "copyreg.__newobj_ex__",
    // Result tuples and enums of modules whose functions are refused.
    "os.stat_result",
    "os.statvfs_result",
    "os.terminal_size",
    "os.times_result",
    "os.uname_result",
    "os.waitid_result",
    "os.sched_param",
    "signal.Signals",
    "signal.Handlers",
    "signal.Sigmasks",
    "socket.AddressFamily",
    "socket.SocketKind",
    "socket.MsgFlag",
    "socket.AddressInfo",
    "socket.gaierror",
    "socket.herror",
    "subprocess.CompletedProcess",
    "subprocess.TimeoutExpired",
    "threading.BrokenBarrierError",
    "types.SimpleNamespace",
    "types.GenericAlias",
    "types.UnionType",
    "types.NoneType",
    "types.NotImplementedType",
    "types.EllipsisType",
    "inspect.Parameter",
    "inspect.Signature",
    "inspect.BoundArguments",
    "inspect._ParameterKind",
    "inspect._empty",
    // The path classes themselves (3.13 moved them to pathlib._local).
    "pathlib.Path",
    "pathlib.PosixPath",
    "pathlib.WindowsPath",
    "pathlib.PurePath",
    "pathlib.PurePosixPath",
    "pathlib.PureWindowsPath",
    "pathlib._local.Path",
    "pathlib._local.PosixPath",
    "pathlib._local.WindowsPath",
    "pathlib._local.PurePath",
    "pathlib._local.PurePosixPath",
    "pathlib._local.PureWindowsPath",
];

/// Attribute names refused wherever they live (any part after the module): the dangerous
/// callables themselves, under the names other modules import them by.
pub const DENIED_NAMES: &[(&str, &str)] = &[
    ("system", "runs a shell command"),
    (
        "exec_module",
        "executes a module's code (importlib loaders)",
    ),
    ("source_to_code", "compiles source text (importlib loaders)"),
    ("get_code", "a loader's code object, run by exec_module"),
    (
        "load_module",
        "imports and runs a module (importlib loaders)",
    ),
    ("popen", "runs a shell command"),
    ("Popen", "runs a program"),
    ("getoutput", "runs a shell command"),
    ("getstatusoutput", "runs a shell command"),
    ("check_output", "runs a program"),
    ("check_call", "runs a program"),
    ("execv", "replaces the process with a program"),
    ("execve", "replaces the process with a program"),
    ("execvp", "replaces the process with a program"),
    ("execvpe", "replaces the process with a program"),
    ("execl", "replaces the process with a program"),
    ("execle", "replaces the process with a program"),
    ("execlp", "replaces the process with a program"),
    ("execlpe", "replaces the process with a program"),
    ("spawn", "runs a program"),
    ("spawnv", "runs a program"),
    ("spawnve", "runs a program"),
    ("spawnvp", "runs a program"),
    ("spawnvpe", "runs a program"),
    ("spawnl", "runs a program"),
    ("spawnle", "runs a program"),
    ("spawnlp", "runs a program"),
    ("spawnlpe", "runs a program"),
    ("posix_spawn", "runs a program"),
    ("posix_spawnp", "runs a program"),
    ("fork_exec", "runs a program"),
    ("spawnv_passfds", "runs a program"),
    ("eval", "evaluates a Python expression given as a string"),
    ("exec", "runs Python statements given as a string"),
    ("execfile", "runs a Python file"),
    ("import_module", "imports any module by name"),
    ("locate", "resolves any dotted name (pydoc.locate)"),
    (
        "resolve_name",
        "resolves any dotted name (pkgutil.resolve_name)",
    ),
    ("subimport", "imports any module by name (cloudpickle)"),
    (
        "_ufunc_reconstruct",
        "imports and resolves any name (numpy's ufunc unpickler)",
    ),
    (
        "load",
        "deserialisers (numpy.load, torch.load, yaml.load) read pickles or build objects",
    ),
    (
        "loads",
        "deserialisers read a nested pickle this check never sees",
    ),
    ("unsafe_load", "builds arbitrary Python objects (yaml)"),
    ("full_load", "builds Python objects (yaml)"),
    ("load_all", "builds arbitrary Python objects (yaml)"),
    ("unsafe_load_all", "builds arbitrary Python objects (yaml)"),
    ("full_load_all", "builds Python objects (yaml)"),
    ("read_pickle", "reads a pickle from a file (pandas)"),
    ("load_library", "loads a shared library"),
    ("LoadLibrary", "loads a shared library"),
    ("dlopen", "loads a shared library"),
    ("start_new_thread", "runs any callable in a new thread"),
    ("_start_new_thread", "runs any callable in a new thread"),
    ("start_joinable_thread", "runs any callable in a new thread"),
    (
        "_start_joinable_thread",
        "runs any callable in a new thread",
    ),
    (
        "open",
        "opens, creates or truncates files (io.open, codecs.open, gzip.open, ...)",
    ),
    ("open_code", "opens files"),
    ("rmtree", "deletes directory trees"),
    ("write_text", "writes files"),
    ("write_bytes", "writes files"),
    (
        "format",
        "str.format and Formatter read any attribute chain of their arguments",
    ),
    ("format_map", "reads any attribute chain of its arguments"),
    ("vformat", "reads any attribute chain of its arguments"),
    ("getattr", "reads any attribute"),
    ("setattr", "changes any attribute"),
    ("delattr", "deletes any attribute"),
    (
        "_getattribute",
        "reads any dotted attribute (pickle's resolver)",
    ),
    ("getattr_static", "reads any attribute"),
    ("attrgetter", "reads any dotted attribute"),
    ("methodcaller", "calls any method"),
    ("FunctionType", "builds a function from a code object"),
    ("LambdaType", "builds a function from a code object"),
    ("CodeType", "builds a code object"),
    ("MethodType", "binds any function to any object"),
    ("get_type_hints", "evaluates annotation strings with eval()"),
    ("_eval_type", "evaluates annotation strings with eval()"),
];

/// Module names refused as any part after the first (`pathlib.os`, `X.sys.modules`,
/// `gevent.subprocess`): many modules import these, so a dotted name or a `getattr` reaches
/// them from anywhere. (`types` and `_pickle` are not here: `pydantic.types` and
/// `numpy.random._pickle` are modules of ordinary data.)
pub const MODULE_ATTRIBUTES: &[&str] = &[
    "os",
    "posix",
    "nt",
    "sys",
    "subprocess",
    "builtins",
    "importlib",
    "shutil",
    "pty",
    "runpy",
    "ctypes",
    "marshal",
    "pickle",
    "socket",
];

/// The dunder attribute names a path may hold: copyreg's constructors, and `C.__new__`
/// (what `NEWOBJ` calls anyway; CPython pickles `object.__new__` and keyword-only
/// constructors with it; `type.__new__` is in [`DENIED`]).
const DUNDERS_ALLOWED: &[&str] = &["__newobj__", "__newobj_ex__", "__new__"];

const WHY_DUNDER: &str = "dunder attributes reach interpreter internals (__globals__, \
                          __builtins__, __subclasses__, ...)";
const WHY_MODULE_ATTRIBUTE: &str = "reaches a dangerous module through an attribute";
const WHY_CALLS_BUILT: &str = "the pickle calls, or uses as a class, the object this builds: \
                               only a class or function it names may be called";
const WHY_TYPE: &str = "type() with other than one argument creates classes";
const WHY_MUTATES: &str = "the pickle sets attributes on, or adds items to, this class or module \
                           itself, changing it for the whole reader";

/// Refuses a tree that names a dangerous global (see the module docs for the rules and the
/// deny-list). Walks every node without recursion, so any depth is fine.
pub fn check_globals(value: &Pickle) -> Result<(), UnsafeGlobal> {
    // Room for a manager request's pickle without growing.
    let mut stack = Vec::with_capacity(16);
    stack.push(value);
    // Globals already accepted: a memo reference copies its global, and a small pickle can
    // name one a million times.
    let mut accepted: HashSet<(&str, &str)> = HashSet::new();
    while let Some(node) = stack.pop() {
        match node {
            Pickle::None
            | Pickle::Bool(_)
            | Pickle::Int(_)
            | Pickle::BigInt(_)
            | Pickle::Float(_)
            | Pickle::Str(_)
            | Pickle::SurrogateStr(_)
            | Pickle::Bytes(_)
            | Pickle::ByteArray(_) => {}
            Pickle::Tuple(_)
            | Pickle::List(_)
            | Pickle::Set(_)
            | Pickle::FrozenSet(_)
            | Pickle::Dict(_) => node.for_each_child(|child| stack.push(child)),
            Pickle::Global { module, name } => {
                if accepted.insert((module.as_str(), name.as_str())) {
                    check_named(node)?;
                }
            }
            Pickle::Reduce { callable, args } => {
                if is_getattr(callable) {
                    // A `getattr` chain is checked whole, as the path it names.
                    check_named(node)?;
                    continue;
                }
                let nargs = match &**args {
                    Pickle::Tuple(items) => Some(items.len()),
                    _ => None,
                };
                check_callee(callable, nargs)?;
                stack.push(callable);
                stack.push(args);
            }
            Pickle::NewObj {
                class,
                args,
                kwargs,
            } => {
                // `type.__new__(type, name, bases, dict)` creates a class.
                check_callee(class, None)?;
                stack.push(class);
                stack.push(args);
                if let Some(kwargs) = kwargs {
                    stack.push(kwargs);
                }
            }
            Pickle::Obj { class, args } => {
                check_callee(class, Some(args.len()))?;
                stack.push(class);
                stack.extend(args);
            }
            Pickle::Build { object, state } => {
                check_not_named(object)?;
                stack.push(object);
                stack.push(state);
            }
            Pickle::Appends { target, items } | Pickle::AddItems { target, items } => {
                check_not_named(target)?;
                stack.push(target);
                stack.extend(items);
            }
            Pickle::SetItems { target, items } => {
                check_not_named(target)?;
                stack.push(target);
                for (k, v) in items {
                    stack.push(k);
                    stack.push(v);
                }
            }
        }
    }
    Ok(())
}

/// A named path: a global, plus the attributes of a `getattr` chain on it, split on dots.
/// `module_parts` of `parts` are the module's.
struct NamedPath<'a> {
    parts: Vec<&'a str>,
    module_parts: usize,
}

impl NamedPath<'_> {
    fn dotted(&self) -> String {
        self.parts.join(".")
    }
}

fn is_getattr(value: &Pickle) -> bool {
    matches!(value, Pickle::Global { module, name } if module == "builtins" && name == "getattr")
}

/// The path `value` names: a [`Pickle::Global`], or `getattr(P, 'name')` of a named path `P`
/// (exactly two arguments: with a default, the result may be that built value instead).
fn named_path(value: &Pickle) -> Option<NamedPath<'_>> {
    let mut attributes: Vec<&str> = Vec::new();
    let mut node = value;
    loop {
        match node {
            Pickle::Global { module, name } => {
                let mut parts: Vec<&str> = module.split('.').collect();
                let module_parts = parts.len();
                parts.extend(name.split('.'));
                for attribute in attributes.iter().rev() {
                    parts.extend(attribute.split('.'));
                }
                return Some(NamedPath {
                    parts,
                    module_parts,
                });
            }
            Pickle::Reduce { callable, args } if is_getattr(callable) => match &**args {
                Pickle::Tuple(items) => match items.as_slice() {
                    [target, Pickle::Str(attribute)] => {
                        attributes.push(attribute.as_str());
                        node = target;
                    }
                    _ => return None,
                },
                _ => return None,
            },
            _ => return None,
        }
    }
}

/// Checks a node that must be a named path (a global or a `getattr` chain).
fn check_named(value: &Pickle) -> Result<(), UnsafeGlobal> {
    match named_path(value) {
        Some(path) => check_path(&path),
        None => Err(UnsafeGlobal {
            global: "builtins.getattr".to_owned(),
            why: "getattr is accepted only on a class or module the pickle names, with a \
                  literal attribute name: on a built object it reaches its methods \
                  (Path(...).write_text)",
        }),
    }
}

/// What is called (or used as a class) must be named, a `functools.partial` of something
/// named, or a plain value that cannot be called at all; `type` only with one argument
/// (`nargs`, `None` for `NEWOBJ`).
fn check_callee(callee: &Pickle, nargs: Option<usize>) -> Result<(), UnsafeGlobal> {
    if let Some(path) = named_path(callee) {
        if path.parts == ["builtins", "type"] && nargs != Some(1) {
            return Err(UnsafeGlobal {
                global: path.dotted(),
                why: WHY_TYPE,
            });
        }
        return Ok(());
    }
    if is_partial_of_named(callee) {
        return Ok(());
    }
    match root_path(callee) {
        Some(global) => Err(UnsafeGlobal {
            global,
            why: WHY_CALLS_BUILT,
        }),
        // A plain value (or a call of one): not callable, the reader just fails.
        None => Ok(()),
    }
}

/// `functools.partial(f, ...)` with `f` a named path, as CPython pickles it (the class
/// called with `(f,)`, then `BUILD` with the state `(f, args, kwargs, dict)`, whose `f` is
/// the one kept). Calling it calls `f`, which the walk checks like any other name: this is
/// how protocols 2 and 3 pickle an object whose `__getnewargs_ex__` has keyword arguments
/// (`partial(C.__new__, C, **kwargs)()`).
fn is_partial_of_named(value: &Pickle) -> bool {
    let first_is_named = |items: &[Pickle]| items.first().and_then(named_path).is_some();
    let constructed = |value: &Pickle| match value {
        Pickle::Reduce {
            callable: class,
            args,
        }
        | Pickle::NewObj { class, args, .. } => {
            as_global(class) == Some(("functools", "partial"))
                && matches!(&**args, Pickle::Tuple(items) if first_is_named(items))
        }
        _ => false,
    };
    match value {
        Pickle::Build { object, state } => {
            constructed(object) && matches!(&**state, Pickle::Tuple(items) if first_is_named(items))
        }
        other => constructed(other),
    }
}

/// `BUILD` and the item opcodes must not target a class or module itself.
fn check_not_named(target: &Pickle) -> Result<(), UnsafeGlobal> {
    match named_path(target) {
        Some(path) => Err(UnsafeGlobal {
            global: path.dotted(),
            why: WHY_MUTATES,
        }),
        None => Ok(()),
    }
}

/// The named path an opaque value is built from (following callables, classes and targets).
fn root_path(value: &Pickle) -> Option<String> {
    let mut node = value;
    loop {
        if let Some(path) = named_path(node) {
            return Some(path.dotted());
        }
        node = match node {
            Pickle::Reduce { callable, .. } => callable,
            Pickle::NewObj { class, .. } | Pickle::Obj { class, .. } => class,
            Pickle::Build { object, .. } => object,
            Pickle::Appends { target, .. }
            | Pickle::SetItems { target, .. }
            | Pickle::AddItems { target, .. } => target,
            _ => return None,
        };
    }
}

/// An exception class: building one only stores its arguments.
fn is_exception_name(name: &str) -> bool {
    name.ends_with("Error") || name.ends_with("Exception") || name.ends_with("Warning")
}

fn is_dunder(name: &str) -> bool {
    name.len() > 4 && name.starts_with("__") && name.ends_with("__")
}

/// [`DENIED`] by its entries' first part, lowercased (in their order), and
/// [`DENIED_NAMES`] as a map: a request may name many globals.
struct Tables {
    denied: HashMap<String, Vec<(&'static str, &'static str)>>,
    denied_names: HashMap<&'static str, &'static str>,
}

fn tables() -> &'static Tables {
    static TABLES: OnceLock<Tables> = OnceLock::new();
    TABLES.get_or_init(|| {
        let mut denied: HashMap<String, Vec<_>> = HashMap::new();
        for &(entry, why) in DENIED {
            let root = entry.split('.').next().unwrap_or(entry);
            denied
                .entry(root.to_ascii_lowercase())
                .or_default()
                .push((entry, why));
        }
        let mut denied_names = HashMap::new();
        for &(name, why) in DENIED_NAMES {
            denied_names.entry(name).or_insert(why);
        }
        Tables {
            denied,
            denied_names,
        }
    })
}

/// The number of parts of `entry` (dotted) when `path` is it or lies under it; without
/// allocating, since every global of a request is checked.
fn covered_by(path: &NamedPath, entry: &str) -> Option<usize> {
    let mut n = 0;
    for (i, expected) in entry.split('.').enumerate() {
        if i >= path.parts.len() || !part_is(path, i, expected) {
            return None;
        }
        n = i + 1;
    }
    Some(n)
}

/// Whether `path` is exactly `dotted`, part by part (as written: no case folding).
fn is_exactly(path: &NamedPath, dotted: &str) -> bool {
    let mut parts = path.parts.iter();
    dotted
        .split('.')
        .all(|expected| parts.next().is_some_and(|part| *part == expected))
        && parts.next().is_none()
}

/// Whether part `i` of a path equals `expected`: module parts ignore ASCII case.
fn part_is(path: &NamedPath, i: usize, expected: &str) -> bool {
    let part = path.parts[i];
    if i < path.module_parts {
        part.eq_ignore_ascii_case(expected)
    } else {
        part == expected
    }
}

/// Rules 1-3 of the module docs.
fn check_path(path: &NamedPath) -> Result<(), UnsafeGlobal> {
    let refuse = |why| {
        Err(UnsafeGlobal {
            global: path.dotted(),
            why,
        })
    };
    let root = path.parts[0];
    let root: Cow<'_, str> = if root.bytes().any(|b| b.is_ascii_uppercase()) {
        Cow::Owned(root.to_ascii_lowercase())
    } else {
        Cow::Borrowed(root)
    };
    let candidates = tables()
        .denied
        .get(root.as_ref())
        .map_or(&[][..], Vec::as_slice);
    for (entry, why) in candidates {
        let Some(entry_len) = covered_by(path, entry) else {
            continue;
        };
        let exception_of_module = entry_len <= path.module_parts
            && path.parts.len() == path.module_parts + 1
            && is_exception_name(path.parts[path.module_parts]);
        if exception_of_module {
            continue;
        }
        // Looked up only here: most paths are under no entry.
        if ALLOWED.iter().any(|allowed| is_exactly(path, allowed)) {
            break;
        }
        return refuse(why);
    }
    for i in 1..path.parts.len() {
        if MODULE_ATTRIBUTES.iter().any(|m| part_is(path, i, m)) {
            return refuse(WHY_MODULE_ATTRIBUTE);
        }
    }
    for part in &path.parts[path.module_parts..] {
        if is_dunder(part) && !DUNDERS_ALLOWED.contains(part) {
            return refuse(WHY_DUNDER);
        }
        if let Some(why) = tables().denied_names.get(part) {
            return refuse(why);
        }
    }
    Ok(())
}
