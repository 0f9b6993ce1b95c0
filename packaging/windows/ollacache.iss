; Inno Setup script of the Windows installer; packaging/build.py runs it with
;   iscc /DAppVersion=VERSION /DSourceDir=<dist>\ollacache /O<dist> packaging\windows\ollacache.iss
; It installs the one-folder build (OllacacheApp.exe, the windowed tray app, and ollacache.exe, the console CLI)
; per user, adds a Start-menu entry, and optionally starts the tray app at login with the same Run value
; the app's own "Start at login" writes (HKCU\...\Run, "Ollacache"), so either can turn it off.

#ifndef AppVersion
  #define AppVersion "0.0.0"
#endif
#ifndef SourceDir
  #define SourceDir "..\..\dist\ollacache"
#endif

[Setup]
AppId={{6F1C2B7E-0A4D-4C39-9B0E-0C1A6E5D7F21}
AppName=Ollacache
AppVersion={#AppVersion}
AppPublisher=Ollacache contributors
DefaultDirName={localappdata}\Programs\Ollacache
DefaultGroupName=Ollacache
DisableProgramGroupPage=yes
PrivilegesRequired=lowest
OutputBaseFilename=Ollacache-{#AppVersion}-setup
SetupIconFile=..\..\build\icons\ollacache.ico
UninstallDisplayIcon={app}\OllacacheApp.exe
Compression=lzma2/max
SolidCompression=yes
ArchitecturesAllowed=x64compatible
ArchitecturesInstallIn64BitMode=x64compatible
WizardStyle=modern

[Tasks]
Name: "startatlogin"; Description: "Start Ollacache at login (in the tray)"; Flags: unchecked

[Files]
Source: "{#SourceDir}\*"; DestDir: "{app}"; Flags: ignoreversion recursesubdirs createallsubdirs

[Icons]
Name: "{group}\Ollacache"; Filename: "{app}\OllacacheApp.exe"
Name: "{group}\Uninstall Ollacache"; Filename: "{uninstallexe}"

[Registry]
Root: HKCU; Subkey: "Software\Microsoft\Windows\CurrentVersion\Run"; ValueType: string; ValueName: "Ollacache"; \
  ValueData: """{app}\OllacacheApp.exe"" --hidden"; Flags: uninsdeletevalue; Tasks: startatlogin

[Run]
Filename: "{app}\OllacacheApp.exe"; Description: "Start Ollacache now"; Flags: nowait postinstall skipifsilent
